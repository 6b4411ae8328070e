//! Connecting a provider account (Slack, Google) over the OAuth 2.0 authorization code flow:
//! PKCE S256 always, a caller-made `state`, redirect URIs matched exactly against the
//! operator's allowlist, minimal scopes; tokens exchanged, refreshed and revoked here. The
//! caller keeps the flow's secrets and the tokens (in the vault).

use std::time::Duration;

use chimatic_domain::{OAuthProvider, Sensitive};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};

use crate::HttpClient;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The provider refused the code or the refresh token (`invalid_grant` and the like): the
    /// connection must be made again.
    #[error("the provider refused: {0}")]
    Refused(String),
    #[error("the provider could not be reached or answered with an error")]
    Unavailable,
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

/// The scopes asked for, and no more: posting messages as the app's bot to channels it was
/// added to (Slack), sending mail as the account (Google; no reading).
pub fn scopes(provider: OAuthProvider) -> &'static [&'static str] {
    match provider {
        OAuthProvider::Slack => &["chat:write"],
        OAuthProvider::Google => &["https://www.googleapis.com/auth/gmail.send"],
    }
}

/// A provider's endpoints; the defaults are the real providers'.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    /// Google: the revocation endpoint; Slack: unused (`auth.revoke` is on the API base).
    pub revoke: String,
    /// Slack's Web API, or the Gmail API.
    pub api_base: String,
}

impl Endpoints {
    pub fn defaults(provider: OAuthProvider) -> Self {
        let (authorize, token, revoke, api_base) = match provider {
            OAuthProvider::Slack => (
                "https://slack.com/oauth/v2/authorize",
                "https://slack.com/api/oauth.v2.access",
                "https://slack.com/api/auth.revoke",
                "https://slack.com/api",
            ),
            OAuthProvider::Google => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://oauth2.googleapis.com/revoke",
                "https://gmail.googleapis.com",
            ),
        };
        Self { authorize: authorize.into(), token: token.into(), revoke: revoke.into(), api_base: api_base.into() }
    }
}

/// Tokens a provider issued.
pub struct Tokens {
    pub access_token: Sensitive<String>,
    pub refresh_token: Option<Sensitive<String>>,
    pub expires_in: Option<Duration>,
    /// As granted (the provider's answer), or as asked when it did not say.
    pub scope: String,
}

/// How a revocation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Now,
    /// The provider no longer knew the token (expired, revoked elsewhere).
    Already,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Chimatic's registered app at one provider.
#[derive(Clone)]
pub struct ConnectApp {
    pub provider: OAuthProvider,
    client_id: ClientId,
    client_secret: Sensitive<String>,
    endpoints: Endpoints,
    authorize: AuthUrl,
    token: TokenUrl,
    redirect_uris: Vec<String>,
    http: HttpClient,
}

impl std::fmt::Debug for ConnectApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectApp")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id.as_str())
            .field("redirect_uris", &self.redirect_uris)
            .finish_non_exhaustive()
    }
}

/// An endpoint or redirect URI: https, or http on a loopback address (development, tests).
fn checked_url(what: &str, text: &str) -> Result<url::Url, ConnectError> {
    let url =
        url::Url::parse(text).map_err(|_| ConnectError::Misconfigured(format!("{what} `{text}` is not a URL")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(ConnectError::Misconfigured(format!("{what} `{text}` must be https")));
    }
    Ok(url)
}

impl ConnectApp {
    /// Refuses a redirect URI with a wildcard, a fragment, or in any but its canonical form
    /// (so that matching it exactly means what it says).
    pub fn new(
        provider: OAuthProvider,
        client_id: String,
        client_secret: Sensitive<String>,
        endpoints: Endpoints,
        redirect_uris: Vec<String>,
        http: HttpClient,
    ) -> Result<Self, ConnectError> {
        if redirect_uris.is_empty() {
            return Err(ConnectError::Misconfigured("no redirect URI is allowed".into()));
        }
        for uri in &redirect_uris {
            if uri.contains('*') {
                return Err(ConnectError::Misconfigured(format!("redirect URI `{uri}` has a wildcard; list each URI")));
            }
            let url = checked_url("redirect URI", uri)?;
            if url.fragment().is_some() || url.as_str() != uri {
                return Err(ConnectError::Misconfigured(format!(
                    "redirect URI `{uri}` must be written in its canonical form `{}` without a fragment",
                    url.as_str()
                )));
            }
        }
        for (what, text) in [("authorize URL", &endpoints.authorize), ("token URL", &endpoints.token)]
            .into_iter()
            .chain([("revoke URL", &endpoints.revoke), ("API base", &endpoints.api_base)])
        {
            checked_url(what, text)?;
        }
        let misconfigured = |e: url::ParseError| ConnectError::Misconfigured(e.to_string());
        Ok(Self {
            provider,
            client_id: ClientId::new(client_id),
            client_secret,
            authorize: AuthUrl::new(endpoints.authorize.clone()).map_err(misconfigured)?,
            token: TokenUrl::new(endpoints.token.clone()).map_err(misconfigured)?,
            endpoints,
            redirect_uris,
            http,
        })
    }

    /// Whether `uri` is on the allowlist, byte for byte.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|allowed| allowed == uri)
    }

    pub fn api_base(&self) -> &str {
        &self.endpoints.api_base
    }

    /// Whether the API base is the real provider's (then it is not stored with the integration).
    pub fn api_base_is_default(&self) -> bool {
        self.endpoints.api_base == Endpoints::defaults(self.provider).api_base
    }

    fn client(&self, redirect_uri: &str) -> Result<Client, ConnectError> {
        if !self.allows_redirect(redirect_uri) {
            return Err(ConnectError::Misconfigured(format!("`{redirect_uri}` is not an allowed redirect URI")));
        }
        let redirect =
            RedirectUrl::new(redirect_uri.to_string()).map_err(|e| ConnectError::Misconfigured(e.to_string()))?;
        Ok(BasicClient::new(self.client_id.clone())
            .set_client_secret(ClientSecret::new(self.client_secret.expose().clone()))
            .set_auth_uri(self.authorize.clone())
            .set_token_uri(self.token.clone())
            .set_redirect_uri(redirect))
    }

    /// The provider's page for this flow; `pkce_verifier` is 43 or more characters of
    /// `[A-Za-z0-9-._~]` (RFC 7636), kept by the caller with the state.
    pub fn authorization_url(
        &self,
        state: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
    ) -> Result<url::Url, ConnectError> {
        let client = self.client(redirect_uri)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(pkce_verifier.into()));
        let state = state.to_string();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(scopes(self.provider).iter().map(|s| Scope::new(s.to_string())))
            .set_pkce_challenge(challenge);
        if self.provider == OAuthProvider::Google {
            // A refresh token, asked for on every consent (Google gives one only then).
            request = request.add_extra_param("access_type", "offline").add_extra_param("prompt", "consent");
        }
        Ok(request.url().0)
    }

    /// Exchanges a callback's code with the flow's PKCE verifier.
    pub async fn exchange(&self, code: &str, pkce_verifier: &str, redirect_uri: &str) -> Result<Tokens, ConnectError> {
        let response = self
            .client(redirect_uri)?
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await;
        self.tokens(response, "code exchange")
    }

    /// A new access token for a refresh token. Providers that rotate refresh tokens return a
    /// new one, which replaces the old.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ConnectError> {
        // The redirect URI plays no part in a refresh; any allowed one builds the client.
        let response = self
            .client(&self.redirect_uris[0])?
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .request_async(&self.http)
            .await;
        self.tokens(response, "token refresh")
    }

    fn tokens<E: std::error::Error>(
        &self,
        response: Result<oauth2::basic::BasicTokenResponse, RequestTokenError<E, oauth2::basic::BasicErrorResponse>>,
        what: &str,
    ) -> Result<Tokens, ConnectError> {
        let response = response.map_err(|e| {
            tracing::warn!(provider = self.provider.as_str(), error = %e, "OAuth {what} failed");
            match e {
                RequestTokenError::ServerResponse(refusal) => ConnectError::Refused(refusal.error().to_string()),
                // Slack answers a refusal with 200 and `{"ok": false}`, which is no token response.
                RequestTokenError::Parse(..) => ConnectError::Refused("unexpected answer".into()),
                _ => ConnectError::Unavailable,
            }
        })?;
        let granted = response.scopes().map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
        Ok(Tokens {
            access_token: Sensitive::new(response.access_token().secret().clone()),
            refresh_token: response.refresh_token().map(|t| Sensitive::new(t.secret().clone())),
            expires_in: response.expires_in(),
            scope: granted.unwrap_or_else(|| scopes(self.provider).join(" ")),
        })
    }

    /// Revokes a token at the provider (Google: the refresh token ends the whole grant;
    /// Slack: `auth.revoke` with the bot token).
    pub async fn revoke(&self, token: &str) -> Result<Revoked, ConnectError> {
        let http = self.http.reqwest();
        let unavailable = |e: reqwest::Error| {
            tracing::warn!(provider = self.provider.as_str(), error = %e, "OAuth revocation failed");
            ConnectError::Unavailable
        };
        match self.provider {
            OAuthProvider::Slack => {
                let url = format!("{}/auth.revoke", self.endpoints.api_base.trim_end_matches('/'));
                let response = http.post(url).bearer_auth(token).send().await.map_err(unavailable)?;
                if !response.status().is_success() {
                    return Err(ConnectError::Unavailable);
                }
                let body: serde_json::Value = response.json().await.map_err(unavailable)?;
                match (body["ok"].as_bool(), body["error"].as_str()) {
                    (Some(true), _) => Ok(Revoked::Now),
                    (_, Some("invalid_auth" | "token_revoked" | "token_expired" | "account_inactive")) => {
                        Ok(Revoked::Already)
                    }
                    _ => Err(ConnectError::Unavailable),
                }
            }
            OAuthProvider::Google => {
                let response =
                    http.post(&self.endpoints.revoke).form(&[("token", token)]).send().await.map_err(unavailable)?;
                let status = response.status();
                if status.is_success() {
                    return Ok(Revoked::Now);
                }
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if status.as_u16() == 400 && body["error"] == "invalid_token" {
                    Ok(Revoked::Already)
                } else {
                    Err(ConnectError::Unavailable)
                }
            }
        }
    }
}
