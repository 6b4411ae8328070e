//! The one configuration type: command-line flags, each with an environment variable.
//! Key material is never a flag or a config-file entry: it is injected through the environment
//! (`CHIMATIC_KEK`, `CHIMATIC_PKCS11_PIN`) or a file path (`CHIMATIC_KEK_FILE`,
//! `CHIMATIC_PKCS11_PIN_FILE`), or stays in an HSM (`CHIMATIC_KEK_PROVIDER=pkcs11`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chimatic_domain::Region;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chimatic",
    version,
    about = "Chimatic: self-hosted, multi-tenant notification orchestration and delivery",
    long_about = "Chimatic accepts notifications over an HTTP API, stores them encrypted (AES-256-GCM envelope \
                  encryption), and delivers them as signed Standard Webhooks with retries.\n\n\
                  Key encryption key: set CHIMATIC_KEK (base64 of 32 bytes) or CHIMATIC_KEK_FILE (a file with \
                  mode 0600 holding the same). Without either, a development key is generated in the data directory."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the API server and the delivery workers.
    Serve(Box<ServeArgs>),
    /// Manage workspaces (works whether or not the server is running).
    Workspace {
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Console users: create a workspace's first owner, reset a password.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create or upgrade the schema of every configured store (control plane and each region's
    /// data and vault; idempotent) and exit. `serve` migrates what it opens on start too, and
    /// refuses a schema newer than it knows.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The audit log: verify its hash chains (in the stores, or an export), sign chain heads.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Key-encryption key administration.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Report what protects the data (KEK provider, key file permissions, development keys);
    /// with `--production`, exit with an error on any finding.
    Doctor {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, env = "CHIMATIC_PRODUCTION", value_parser = BoolishValueParser::new())]
        production: bool,
    },
    /// Print the OpenAPI document a node of this role serves at `/v1/openapi.json` (the SDKs in
    /// `sdks/` are generated from it).
    Openapi {
        #[arg(long, default_value = "all")]
        role: Role,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a console user who is a member of a workspace, e.g. its first owner. The
    /// password is read from standard input (or --password-file).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        /// owner, admin, developer or viewer.
        #[arg(long, default_value = "owner")]
        role: chimatic_domain::Role,
        /// Read the password from this file's first line instead of standard input.
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password for a user (read from standard input or --password-file); every
    /// session of theirs ends.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Verify every audit chain offline (links, hashes, sequence, signed heads) and report the
    /// first broken entry of each; exits non-zero if any chain is broken. Reads the stores
    /// (the data directory by default), or a JSON Lines export with --file.
    Verify {
        /// Only this workspace's chains.
        #[arg(long)]
        workspace: Option<chimatic_domain::WorkspaceId>,
        /// An export from `GET /v1/audit/export` instead of the stores.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Hex Ed25519 public key heads must be signed with (repeatable; `GET /v1/audit/public-key`).
        #[arg(long)]
        public_key: Vec<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Sign every chain's head now (nodes also do so every CHIMATIC_AUDIT_SIGN_INTERVAL_SECS).
    Sign {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a new KEK version current (a new key in the PKCS#11 token, or a new development key
    /// file). Nodes pick it up within CHIMATIC_KEK_REFRESH_SECS and re-wrap every DEK in the
    /// background; nothing stops.
    RotateKek {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Per region: the current KEK and how many DEKs each KEK wraps (rotation progress).
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Generate the KEK inside the PKCS#11 token (sensitive, never extractable); refuses if a
    /// key with that label exists.
    InitPkcs11 {
        #[command(flatten)]
        kek: crate::keys::KekArgs,
    },
}

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace; prints {"workspace_id": ..., "api_key": ...} with a one-time owner key.
    Create {
        /// Workspace display name.
        #[arg(long)]
        name: String,
        /// The region whose store holds the workspace's data (default: the primary region).
        /// Fixed for the workspace's lifetime.
        #[arg(long)]
        region: Option<Region>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a workspace's plan, which sets how long its audit log is kept: free 7 days, pro 30,
    /// scale 90, enterprise as given by --audit-retention-days.
    SetPlan {
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        /// free, pro, scale or enterprise.
        #[arg(long)]
        plan: String,
        /// Enterprise only: days to keep the audit log (1 to 3650).
        #[arg(long)]
        audit_retention_days: Option<u32>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set how many days a workspace's notification content is kept (default 30): finished
    /// notifications older than that lose their payload; their delivery metadata stays.
    SetPayloadRetention {
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        /// 1 to 3650.
        #[arg(long)]
        days: u32,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Freeze a workspace (incident isolation), as `POST /v1/admin/workspaces/{id}/freeze` does:
    /// every request for it gets 423 and its deliveries are held until it is unfrozen.
    Freeze {
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Unfreeze a workspace: requests are served again and held deliveries resume.
    Unfreeze {
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Bring your own key: switch a workspace to its own AWS KMS (or compatible) key, as
    /// `PUT /v1/workspace/kms` does. The secret access key comes from
    /// CHIMATIC_KMS_SECRET_ACCESS_KEY, never a flag.
    UseKms {
        #[arg(long)]
        workspace: chimatic_domain::WorkspaceId,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        access_key_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the stores are. Besides these flags, each additional region NAME is configured by
/// `CHIMATIC_REGION_<NAME>_DATABASE_URL` and `CHIMATIC_REGION_<NAME>_VAULT_DATABASE_URL`
/// (a region name is lowercase letters and digits; NAME is it in capitals).
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Directory for the embedded store (SQLite files) and the development key.
    #[arg(long, env = "CHIMATIC_DATA_DIR", default_value = "./chimatic-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub kek: crate::keys::KekArgs,
    /// URL of the primary region's notification store: `postgres://…` or `sqlite:///path/file.db`
    /// (default: `data.db` in the data directory). Needs CHIMATIC_VAULT_DATABASE_URL too.
    #[arg(long, env = "CHIMATIC_DATABASE_URL", hide_env_values = true, requires = "vault_database_url")]
    pub database_url: Option<String>,
    /// URL of the primary region's credential vault: a separate database, ideally with its own role.
    #[arg(long, env = "CHIMATIC_VAULT_DATABASE_URL", hide_env_values = true, requires = "database_url")]
    pub vault_database_url: Option<String>,
    /// URL of the control plane's store (workspaces, API key metadata, analytics). Default: the
    /// primary region's PostgreSQL database, or `control.db` in the data directory.
    #[arg(long, env = "CHIMATIC_CONTROL_DATABASE_URL", hide_env_values = true)]
    pub control_database_url: Option<String>,
    /// Name of the region stored at CHIMATIC_DATABASE_URL (or in the embedded files).
    #[arg(long, env = "CHIMATIC_PRIMARY_REGION", default_value = "default")]
    pub primary_region: Region,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub connect: crate::connect_config::ConnectArgs,
    /// `control` serves workspace configuration, API keys and analytics and holds no key
    /// material and no notification data; `data` serves channels and notifications and
    /// delivers; `all` is both.
    #[arg(long, env = "CHIMATIC_ROLE", default_value = "all")]
    pub role: Role,
    /// Refuse to start with a development key-encryption key (or any `chimatic doctor` finding
    /// about keys).
    #[arg(long, env = "CHIMATIC_PRODUCTION", value_parser = BoolishValueParser::new())]
    pub production: bool,
    /// Regions whose data this node serves and delivers, comma-separated (default: every
    /// configured region). Requests for other regions' workspaces get 421.
    #[arg(long, env = "CHIMATIC_SERVE_REGIONS", value_delimiter = ',')]
    pub serve_regions: Vec<Region>,
    /// Address to listen on (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "CHIMATIC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain: serve HTTPS (TLS 1.3 only, HTTP/2 and HTTP/1.1) instead of plain
    /// HTTP. Reloaded from disk on SIGHUP.
    #[arg(long, env = "CHIMATIC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "CHIMATIC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Allow webhook destinations on loopback, private and link-local addresses, and plain http.
    /// For tests and local development only.
    #[arg(long, env = "CHIMATIC_ALLOW_PRIVATE_DESTINATIONS", value_parser = BoolishValueParser::new(), default_value = "false")]
    pub allow_private_destinations: bool,
    /// PEM file of extra CA certificates trusted for outbound deliveries (e.g. a private CA of
    /// internal receivers), in addition to the system's roots.
    #[arg(long, env = "CHIMATIC_OUTBOUND_CA_FILE")]
    pub outbound_ca_file: Option<PathBuf>,
    /// Delays before each retry, e.g. `5s,5m,30m,2h,5h,10h,10h` (the default).
    #[arg(long, env = "CHIMATIC_RETRY_SCHEDULE")]
    pub retry_schedule: Option<String>,
    /// Deliveries in flight at once.
    #[arg(long, env = "CHIMATIC_DELIVERY_CONCURRENCY", default_value_t = 64)]
    pub delivery_concurrency: usize,
    /// Timeout of one delivery attempt, in seconds.
    #[arg(long, env = "CHIMATIC_DELIVERY_TIMEOUT_SECS", default_value_t = 15)]
    pub delivery_timeout_secs: u64,
    /// Browser origins allowed to call the inbox endpoints (`/v1/inbox…`) across origins,
    /// comma-separated and exact, e.g. `https://app.example.com`. Default: none.
    #[arg(long, env = "CHIMATIC_INBOX_ORIGINS", value_delimiter = ',')]
    pub inbox_origins: Vec<String>,
    /// Seconds between looks for a new KEK version (`chimatic keys rotate-kek` on any node).
    #[arg(long, env = "CHIMATIC_KEK_REFRESH_SECS", default_value_t = 60)]
    pub kek_refresh_secs: u64,
    /// Rotate the KEK automatically once it has been current this long (`90d`, `12h`; `0` turns
    /// it off). Applies to HSM and development keys; an injected key is rotated by its operator.
    #[arg(long, env = "CHIMATIC_KEK_ROTATION_INTERVAL", default_value = "90d", value_parser = rotation_interval)]
    pub kek_rotation_interval: Duration,
    /// Seconds between signatures of the audit chains' heads (chains that grew are signed).
    #[arg(long, env = "CHIMATIC_AUDIT_SIGN_INTERVAL_SECS", default_value_t = 60)]
    pub audit_sign_interval_secs: u64,
    /// Seconds between health checks of each provider integration.
    #[arg(long, env = "CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", default_value_t = 900)]
    pub health_check_interval_secs: u64,
    /// API requests per second allowed per workspace (bursts of up to one second's worth); 0
    /// disables the limit. Over it, requests get 429 with `Retry-After`.
    #[arg(long, env = "CHIMATIC_RATE_LIMIT_PER_WORKSPACE", default_value_t = 20_000)]
    pub rate_limit_per_workspace: u32,
    /// Log format: `text` or `json`.
    #[arg(long, env = "CHIMATIC_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// How long a deactivated channel can be reactivated before the purger deletes it with its
    /// notifications and attempts (e.g. 30d, 12h).
    #[arg(long, env = "CHIMATIC_CHANNEL_RETENTION", default_value = "30d", value_parser = positive_duration)]
    pub channel_retention: Duration,
    /// How often the purge jobs run (deactivated channels past their window, idempotency claims
    /// past 24 h, inbound webhooks past 30 days, audit entries past their plan's retention).
    #[arg(long, env = "CHIMATIC_PURGE_INTERVAL", default_value = "10m", value_parser = positive_duration)]
    pub purge_interval: Duration,
    /// A file (mode 0600) holding the operator token for `/v1/admin/…` (freezing workspaces),
    /// at least 32 characters; or set CHIMATIC_OPERATOR_TOKEN. Without either, those endpoints
    /// are disabled.
    #[arg(long, env = "CHIMATIC_OPERATOR_TOKEN_FILE")]
    pub operator_token_file: Option<PathBuf>,
    /// The console's origin as browsers reach it, e.g. `https://chimatic.example.com`: console
    /// changes must come from it, and it decides whether cookies are `Secure`. Default: this
    /// node's own address. Behind a TLS-terminating proxy, set it to the proxy's https origin
    /// (`X-Forwarded-*` headers are never trusted).
    #[arg(long, env = "CHIMATIC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A console session without a request for this long ends (e.g. 30m).
    #[arg(long, env = "CHIMATIC_CONSOLE_IDLE_TIMEOUT", default_value = "30m", value_parser = positive_duration)]
    pub console_idle_timeout: Duration,
    /// A console session ends this long after sign-in, however active (e.g. 12h).
    #[arg(long, env = "CHIMATIC_CONSOLE_SESSION_LIFETIME", default_value = "12h", value_parser = positive_duration)]
    pub console_session_lifetime: Duration,
    /// An invitation link to the console works this long (e.g. 72h).
    #[arg(long, env = "CHIMATIC_CONSOLE_INVITATION_LIFETIME", default_value = "72h", value_parser = positive_duration)]
    pub console_invitation_lifetime: Duration,
    /// The operator's SMTP relay for the console's mail to people (invitation links), e.g.
    /// `smtp.example.com`. Without it, invitation links are only shown, to copy.
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_HOST", requires = "system_smtp_from")]
    pub system_smtp_host: Option<String>,
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_PORT", default_value_t = 587)]
    pub system_smtp_port: u16,
    /// `starttls` (required; usually port 587) or `implicit` (TLS from the first byte; usually
    /// 465). TLS 1.3 only, trusting the system's roots and CHIMATIC_OUTBOUND_CA_FILE.
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_SECURITY", default_value = "starttls", value_parser = smtp_security)]
    pub system_smtp_security: chimatic_domain::SmtpSecurity,
    /// The sender, e.g. `Chimatic <noreply@example.com>`.
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_FROM", requires = "system_smtp_host")]
    pub system_smtp_from: Option<String>,
    /// The AUTH username, when the relay asks for one; its password is read from
    /// CHIMATIC_SYSTEM_SMTP_PASSWORD_FILE (mode 0600).
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_USERNAME", requires = "system_smtp_password_file")]
    pub system_smtp_username: Option<String>,
    #[arg(long, env = "CHIMATIC_SYSTEM_SMTP_PASSWORD_FILE", requires = "system_smtp_username")]
    pub system_smtp_password_file: Option<PathBuf>,
    /// An OpenID Connect provider people may sign in to the console with, by its issuer URL
    /// (discovery), e.g. `https://accounts.google.com`. Register the redirect URI
    /// `{CHIMATIC_PUBLIC_URL}/console/sign-in/oidc/callback` with it.
    #[arg(long, env = "CHIMATIC_OIDC_ISSUER", requires_all = ["oidc_client_id", "oidc_client_secret_file"])]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "CHIMATIC_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// A file (mode 0600) holding the client secret.
    #[arg(long, env = "CHIMATIC_OIDC_CLIENT_SECRET_FILE", requires = "oidc_issuer")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The provider's name on the sign-in button and in the audit log.
    #[arg(long, env = "CHIMATIC_OIDC_NAME", default_value = "your identity provider")]
    pub oidc_name: String,
}

fn smtp_security(text: &str) -> Result<chimatic_domain::SmtpSecurity, String> {
    match text {
        "starttls" => Ok(chimatic_domain::SmtpSecurity::Starttls),
        "implicit" => Ok(chimatic_domain::SmtpSecurity::Implicit),
        _ => Err(format!("`{text}` is neither starttls nor implicit")),
    }
}

impl ServeArgs {
    /// The operator credential, from CHIMATIC_OPERATOR_TOKEN or the token file.
    pub fn operator(&self) -> anyhow::Result<Option<chimatic_api::OperatorCredential>> {
        let token = match (std::env::var("CHIMATIC_OPERATOR_TOKEN").ok(), &self.operator_token_file) {
            (Some(token), _) => zeroize::Zeroizing::new(token),
            (None, Some(path)) => crate::keys::read_private_file(path)?,
            (None, None) => return Ok(None),
        };
        chimatic_api::OperatorCredential::new(&token).map(Some).map_err(anyhow::Error::msg)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Control,
    Data,
}

impl Role {
    pub fn planes(self) -> chimatic_api::Planes {
        chimatic_api::Planes { control: self != Role::Data, data: self != Role::Control }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration like `30d`, above zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    chimatic_domain::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration like 30d, 12h, 10m or 5s"))
}

/// A duration like `90d`; `0`: off (zero).
fn rotation_interval(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    chimatic_domain::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration like 90d, 12h or 30m (or 0 for off)"))
}

impl ServeArgs {
    /// The console's settings; `bound` is the address the listener got (for the default origin).
    pub fn console(&self, bound: SocketAddr) -> anyhow::Result<chimatic_console::ConsoleConfig> {
        let scheme = if self.tls_cert.is_some() { "https" } else { "http" };
        let public_origin = match &self.public_url {
            Some(url) => {
                let parsed = url::Url::parse(url.trim())
                    .map_err(|_| anyhow::anyhow!("CHIMATIC_PUBLIC_URL: `{url}` is not a URL"))?;
                anyhow::ensure!(
                    matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
                    "CHIMATIC_PUBLIC_URL: `{url}` must be an http or https URL"
                );
                parsed.origin().ascii_serialization()
            }
            None => format!("{scheme}://{bound}"),
        };
        let timeouts =
            chimatic_console::Timeouts { idle: self.console_idle_timeout, absolute: self.console_session_lifetime };
        Ok(chimatic_console::ConsoleConfig {
            timeouts,
            invitation_lifetime: self.console_invitation_lifetime,
            secrets_region: self.store.primary_region.clone(),
            system_mail: self.system_mail()?,
            oidc: self.oidc(&public_origin)?,
            public_origin,
        })
    }

    fn oidc(&self, public_origin: &str) -> anyhow::Result<Option<chimatic_oauth::OidcProvider>> {
        let (Some(issuer), Some(client_id), Some(path)) =
            (&self.oidc_issuer, &self.oidc_client_id, &self.oidc_client_secret_file)
        else {
            return Ok(None);
        };
        let secret = crate::keys::read_private_file(path)?;
        let http = chimatic_oauth::HttpClient::new(self.delivery_timeout())?;
        let provider = chimatic_oauth::OidcProvider::new(
            self.oidc_name.clone(),
            issuer.trim(),
            client_id.clone(),
            chimatic_domain::Sensitive::new(secret.trim_end().to_string()),
            format!("{public_origin}/console/sign-in/oidc/callback"),
            http,
        )
        .map_err(|e| anyhow::anyhow!("CHIMATIC_OIDC_ISSUER: {e}"))?;
        Ok(Some(provider))
    }

    fn system_mail(&self) -> anyhow::Result<Option<chimatic_providers::SmtpRelay>> {
        let (Some(host), Some(from)) = (&self.system_smtp_host, &self.system_smtp_from) else { return Ok(None) };
        let credentials = match (&self.system_smtp_username, &self.system_smtp_password_file) {
            (Some(user), Some(path)) => {
                let password = crate::keys::read_private_file(path)?;
                Some((user.clone(), chimatic_domain::Sensitive::new(password.trim_end().to_string())))
            }
            _ => None,
        };
        let relay = chimatic_providers::SmtpRelay {
            host: host.clone(),
            port: self.system_smtp_port,
            security: self.system_smtp_security,
            from: from.clone(),
            credentials,
        };
        anyhow::ensure!(relay.sender_is_valid(), "CHIMATIC_SYSTEM_SMTP_FROM: `{from}` is not an email address");
        Ok(Some(relay))
    }

    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_secs(self.delivery_timeout_secs.max(1))
    }
}
