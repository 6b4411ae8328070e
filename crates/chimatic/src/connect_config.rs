//! The deployment's OAuth apps for connecting provider accounts (Slack, Google): client
//! credentials, the exact redirect URIs allowed, and the providers' endpoints (the real ones by
//! default; a stand-in's for tests).

use std::path::PathBuf;

use chimatic_domain::{OAuthProvider, Sensitive};
use chimatic_oauth::{ConnectApp, Endpoints, HttpClient};

/// Register the redirect URIs with the provider too; for the console, include
/// `{CHIMATIC_PUBLIC_URL}/console/integrations/connect/callback`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectArgs {
    /// Slack app's client id (scope asked: `chat:write`).
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_CLIENT_ID", requires_all = ["slack_client_secret_file", "slack_redirect_uris"])]
    pub slack_client_id: Option<String>,
    /// A file (mode 0600) holding the Slack app's client secret.
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_CLIENT_SECRET_FILE", requires = "slack_client_id")]
    pub slack_client_secret_file: Option<PathBuf>,
    /// The redirect URIs allowed, comma-separated, each matched exactly (no wildcards).
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_REDIRECT_URIS", value_delimiter = ',', requires = "slack_client_id")]
    pub slack_redirect_uris: Vec<String>,
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_AUTHORIZE_URL")]
    pub slack_authorize_url: Option<String>,
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_TOKEN_URL")]
    pub slack_token_url: Option<String>,
    /// Slack's Web API (`chat.postMessage`, `auth.test`, `auth.revoke`).
    #[arg(long, env = "CHIMATIC_OAUTH_SLACK_API_BASE")]
    pub slack_api_base: Option<String>,
    /// Google OAuth client's id (scope asked: `gmail.send`).
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_CLIENT_ID", requires_all = ["google_client_secret_file", "google_redirect_uris"])]
    pub google_client_id: Option<String>,
    /// A file (mode 0600) holding the Google client secret.
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_CLIENT_SECRET_FILE", requires = "google_client_id")]
    pub google_client_secret_file: Option<PathBuf>,
    /// The redirect URIs allowed, comma-separated, each matched exactly (no wildcards).
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_REDIRECT_URIS", value_delimiter = ',', requires = "google_client_id")]
    pub google_redirect_uris: Vec<String>,
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_AUTHORIZE_URL")]
    pub google_authorize_url: Option<String>,
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_TOKEN_URL")]
    pub google_token_url: Option<String>,
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_REVOKE_URL")]
    pub google_revoke_url: Option<String>,
    /// The Gmail API (`users.messages.send`).
    #[arg(long, env = "CHIMATIC_OAUTH_GOOGLE_API_BASE")]
    pub google_api_base: Option<String>,
}

struct AppArgs<'a> {
    client_id: &'a Option<String>,
    secret_file: &'a Option<PathBuf>,
    redirect_uris: &'a [String],
    authorize: &'a Option<String>,
    token: &'a Option<String>,
    revoke: Option<&'a Option<String>>,
    api_base: &'a Option<String>,
}

impl ConnectArgs {
    /// The configured apps; a wildcard or non-canonical redirect URI stops the start-up.
    pub fn apps(&self, http: &HttpClient) -> anyhow::Result<Vec<ConnectApp>> {
        let slack = AppArgs {
            client_id: &self.slack_client_id,
            secret_file: &self.slack_client_secret_file,
            redirect_uris: &self.slack_redirect_uris,
            authorize: &self.slack_authorize_url,
            token: &self.slack_token_url,
            revoke: None,
            api_base: &self.slack_api_base,
        };
        let google = AppArgs {
            client_id: &self.google_client_id,
            secret_file: &self.google_client_secret_file,
            redirect_uris: &self.google_redirect_uris,
            authorize: &self.google_authorize_url,
            token: &self.google_token_url,
            revoke: Some(&self.google_revoke_url),
            api_base: &self.google_api_base,
        };
        let mut apps = Vec::new();
        for (provider, args) in [(OAuthProvider::Slack, slack), (OAuthProvider::Google, google)] {
            let (Some(client_id), Some(path)) = (args.client_id, args.secret_file) else { continue };
            let secret = crate::keys::read_private_file(path)?;
            let defaults = Endpoints::defaults(provider);
            let pick = |given: &Option<String>, default: String| given.clone().unwrap_or(default);
            let endpoints = Endpoints {
                authorize: pick(args.authorize, defaults.authorize),
                token: pick(args.token, defaults.token),
                revoke: args.revoke.map_or(defaults.revoke.clone(), |r| pick(r, defaults.revoke.clone())),
                api_base: pick(args.api_base, defaults.api_base),
            };
            let uris = args.redirect_uris.iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect();
            let app = ConnectApp::new(
                provider,
                client_id.clone(),
                Sensitive::new(secret.trim_end().to_string()),
                endpoints,
                uris,
                http.clone(),
            )
            .map_err(|e| anyhow::anyhow!("CHIMATIC_OAUTH_{}_…: {e}", provider.as_str().to_uppercase()))?;
            tracing::info!(provider = provider.as_str(), "OAuth connections enabled");
            apps.push(app);
        }
        Ok(apps)
    }
}
