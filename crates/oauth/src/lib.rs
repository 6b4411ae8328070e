//! OAuth 2.0 and OpenID Connect as a client: the authorization code flow with PKCE (S256,
//! always), a `state` and a `nonce` the caller makes and keeps, and ID tokens validated by the
//! `openidconnect` crate (signature against the provider's JWKS, `iss`, `aud`, `exp`, `iat`,
//! `nonce`). HTTP goes through Chimatic's one reqwest, never following redirects.

pub mod connect;
mod http;

use std::time::Duration;

use chimatic_domain::Sensitive;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};

pub use connect::{ConnectApp, ConnectError, Endpoints, Revoked, Tokens};
pub use http::HttpClient;

/// How far an ID token's `iat` may be from now: a token is used at once, clocks drift a little.
const IAT_SKEW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's configuration could not be read")]
    Discovery,
    #[error("the identity provider refused the authorization code")]
    Exchange,
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token is not valid: {0}")]
    IdToken(String),
    #[error("the identity provider did not vouch for an email address")]
    EmailNotVerified,
    #[error("misconfigured: {0}")]
    Misconfigured(&'static str),
}

/// One OpenID Connect provider the console signs people in with, found by discovery.
#[derive(Clone)]
pub struct OidcProvider {
    /// Shown on the sign-in button and named in the audit log, e.g. "Google".
    pub name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Sensitive<String>,
    redirect: RedirectUrl,
    http: HttpClient,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .finish_non_exhaustive()
    }
}

/// What a validated ID token says about the person.
#[derive(Clone, Debug)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// Verified by the provider (`email_verified`), lower-cased.
    pub email: Sensitive<String>,
}

/// The secrets of one flow, made by the caller from the OS CSPRNG and kept until the callback.
pub struct FlowSecrets<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    /// 43 or more characters of `[A-Za-z0-9-._~]` (RFC 7636).
    pub pkce_verifier: &'a str,
}

impl OidcProvider {
    /// `issuer` must be https, or http on a loopback address (development and tests).
    pub fn new(
        name: String,
        issuer: &str,
        client_id: String,
        client_secret: Sensitive<String>,
        redirect: String,
        http: HttpClient,
    ) -> Result<Self, OidcError> {
        let parsed = url::Url::parse(issuer).map_err(|_| OidcError::Misconfigured("the issuer is not a URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(OidcError::Misconfigured("the issuer must be an https URL"));
        }
        Ok(Self {
            name,
            issuer: IssuerUrl::new(issuer.trim_end_matches('/').to_string())
                .map_err(|_| OidcError::Misconfigured("the issuer is not a URL"))?,
            client_id: ClientId::new(client_id),
            client_secret,
            redirect: RedirectUrl::new(redirect).map_err(|_| OidcError::Misconfigured("the redirect is not a URL"))?,
            http,
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Discovery on every flow: the provider's keys may have rotated since the last one.
    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await.map_err(|e| {
            tracing::warn!(issuer = %self.issuer.as_str(), error = %e, "OpenID Connect discovery failed");
            OidcError::Discovery
        })?;
        let secret = ClientSecret::new(self.client_secret.expose().clone());
        Ok(CoreClient::from_provider_metadata(metadata, self.client_id.clone(), Some(secret))
            .set_redirect_uri(self.redirect.clone()))
    }

    /// The provider's authorization URL for this flow (scopes `openid email`, PKCE S256).
    pub async fn authorization_url(&self, secrets: &FlowSecrets<'_>) -> Result<url::Url, OidcError> {
        let client = self.client().await?;
        let verifier = PkceCodeVerifier::new(secrets.pkce_verifier.to_string());
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let (state, nonce) = (secrets.state.to_string(), secrets.nonce.to_string());
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(url)
    }

    /// Exchanges the code (with the flow's PKCE verifier) and validates the ID token against the
    /// flow's nonce at `now_secs`; only a verified email address is accepted.
    pub async fn finish(
        &self,
        code: &str,
        secrets: &FlowSecrets<'_>,
        now_secs: i64,
    ) -> Result<VerifiedIdentity, OidcError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|_| OidcError::Misconfigured("the provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %self.issuer.as_str(), error = %e, "the authorization code was refused");
                OidcError::Exchange
            })?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let now = chrono_time(now_secs)?;
        let verifier = client.id_token_verifier().set_time_fn(move || now).set_issue_time_verifier_fn(move |iat| {
            let skew = chrono::TimeDelta::from_std(IAT_SKEW).map_err(|e| e.to_string())?;
            if iat > now + skew || iat < now - skew { Err("issued too far from now".into()) } else { Ok(()) }
        });
        let claims = id_token
            .claims(&verifier, &Nonce::new(secrets.nonce.to_string()))
            .map_err(|e| OidcError::IdToken(e.to_string()))?;
        let email =
            claims.email().filter(|_| claims.email_verified() == Some(true)).ok_or(OidcError::EmailNotVerified)?;
        Ok(VerifiedIdentity {
            issuer: claims.issuer().as_str().to_string(),
            subject: claims.subject().as_str().to_string(),
            email: Sensitive::new(email.as_str().to_lowercase()),
        })
    }
}

fn chrono_time(secs: i64) -> Result<chrono::DateTime<chrono::Utc>, OidcError> {
    chrono::DateTime::from_timestamp(secs, 0).ok_or(OidcError::Misconfigured("the clock is out of range"))
}
