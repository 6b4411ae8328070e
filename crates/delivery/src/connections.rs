//! Integrations connected over OAuth: their access tokens are refreshed shortly before they
//! expire and once when a provider refuses one (401, Slack's `invalid_auth`); a refresh that
//! fails marks the integration unhealthy. One refresh per integration at a time in this node,
//! since providers that rotate refresh tokens accept each only once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chimatic_domain::{
    ChannelAddress, IntegrationCredentials, IntegrationId, IntegrationSettings, OAuthGrant, OAuthProvider,
    RenderedMessage, Timestamp, WorkspaceId,
};
use chimatic_oauth::{ConnectApp, ConnectError, Revoked};
use chimatic_providers::{CheckOutcome, MessageMeta, ProviderClient, SendOutcome};
use chimatic_store::{Store, StoreError};

/// A token this close to its expiry is refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The deployment's registered OAuth apps, and the refreshes in progress.
#[derive(Default)]
pub struct Connections {
    apps: BTreeMap<OAuthProvider, ConnectApp>,
    refreshing: Mutex<HashMap<IntegrationId, Arc<tokio::sync::Mutex<()>>>>,
}

/// Why a connection has no usable token; the class is what attempts and checks record.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the provider refused the refresh token; connect again")]
    Refused,
    #[error("the provider could not refresh the token now")]
    Unavailable,
    #[error("no OAuth app is configured for this provider")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RefreshError {
    pub fn class(&self) -> &'static str {
        match self {
            RefreshError::Refused => "oauth_refresh_failed",
            RefreshError::Unavailable => "oauth_unavailable",
            RefreshError::NotConfigured => "misconfigured",
            RefreshError::Store(_) => "store",
        }
    }
}

fn expires_soon(grant: &OAuthGrant, now: Timestamp) -> bool {
    grant.expires_at_ms.is_some_and(|at| Timestamp(at) <= now.plus(REFRESH_MARGIN))
}

impl Connections {
    pub fn new(apps: impl IntoIterator<Item = ConnectApp>) -> Self {
        Self { apps: apps.into_iter().map(|a| (a.provider, a)).collect(), refreshing: Mutex::default() }
    }

    pub fn app(&self, provider: OAuthProvider) -> Option<&ConnectApp> {
        self.apps.get(&provider)
    }

    pub fn configured(&self) -> impl Iterator<Item = OAuthProvider> + '_ {
        self.apps.keys().copied()
    }

    /// `credentials` with a live access token: as they are, or refreshed (and stored) when
    /// the token expires within a minute, or `force`d after the provider refused it.
    pub async fn fresh(
        &self,
        store: &Store,
        ws: WorkspaceId,
        id: IntegrationId,
        credentials: IntegrationCredentials,
        now: Timestamp,
        force: bool,
    ) -> Result<IntegrationCredentials, RefreshError> {
        let Some(grant) = credentials.grant() else { return Ok(credentials) };
        if !force && !expires_soon(grant, now) {
            return Ok(credentials);
        }
        let lock = {
            let mut all = self.refreshing.lock().unwrap_or_else(PoisonError::into_inner);
            all.retain(|_, l| Arc::strong_count(l) > 1);
            all.entry(id).or_default().clone()
        };
        let _held = lock.lock().await;
        // Another task may have refreshed it while this one waited.
        let current = store.integration_credentials(ws, id).await?;
        if current.access_token() != credentials.access_token()
            && current.grant().is_some_and(|g| !expires_soon(g, now))
        {
            return Ok(current);
        }
        let refreshed = self.refresh(&current, now).await;
        match refreshed {
            Ok(new) => {
                store.refreshed_credentials(ws, id, &new, now).await?;
                tracing::info!(workspace = %ws, integration = %id, "connection token refreshed");
                Ok(new)
            }
            Err(e) => {
                tracing::warn!(workspace = %ws, integration = %id, error = %e, "connection token refresh failed");
                store.record_integration_check(ws, id, now, false, Some(e.class())).await?;
                Err(e)
            }
        }
    }

    async fn refresh(
        &self,
        current: &IntegrationCredentials,
        now: Timestamp,
    ) -> Result<IntegrationCredentials, RefreshError> {
        let grant = current.grant().ok_or(RefreshError::Refused)?;
        let app = self.apps.get(&grant.provider).ok_or(RefreshError::NotConfigured)?;
        // Slack tokens without rotation never expire and have nothing to refresh with.
        let refresh_token = grant.refresh_token.as_deref().ok_or(RefreshError::Refused)?;
        let tokens = app.refresh(refresh_token).await.map_err(|e| match e {
            ConnectError::Refused(_) => RefreshError::Refused,
            ConnectError::Unavailable | ConnectError::Misconfigured(_) => RefreshError::Unavailable,
        })?;
        Ok(connected_credentials(grant.provider, tokens, grant.refresh_token.clone(), now))
    }

    /// Sends through an integration, refreshing a connection's token first when it is about
    /// to expire, and once more if the provider refuses it.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        providers: &ProviderClient,
        store: &Store,
        (ws, id): (WorkspaceId, IntegrationId),
        meta: &MessageMeta<'_>,
        address: &ChannelAddress,
        content: &RenderedMessage,
        (settings, credentials): (&IntegrationSettings, IntegrationCredentials),
        now: Timestamp,
    ) -> SendOutcome {
        let connected = credentials.grant().is_some();
        let started = Instant::now();
        let failed = |e: RefreshError| SendOutcome {
            status_code: None,
            latency: started.elapsed(),
            error_class: Some(e.class()),
        };
        let credentials = match self.fresh(store, ws, id, credentials, now, false).await {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let outcome = providers.send_message(meta, address, content, Some((settings, &credentials))).await;
        if !(connected && outcome.error_class == Some("auth_rejected")) {
            return outcome;
        }
        match self.fresh(store, ws, id, credentials, now, true).await {
            Ok(c) => providers.send_message(meta, address, content, Some((settings, &c))).await,
            Err(e) => failed(e),
        }
    }

    /// A health check; a connection's token is refreshed first when due (for Gmail, always:
    /// the refresh is its check), and once more if the provider refuses it.
    pub async fn check(
        &self,
        providers: &ProviderClient,
        store: &Store,
        (ws, id): (WorkspaceId, IntegrationId),
        settings: &IntegrationSettings,
        credentials: IntegrationCredentials,
        now: Timestamp,
    ) -> Option<CheckOutcome> {
        let started = Instant::now();
        let connected = credentials.grant().is_some();
        let failed = |e: RefreshError| {
            Some(CheckOutcome { healthy: false, error_class: Some(e.class()), latency: started.elapsed() })
        };
        let force = matches!(settings, IntegrationSettings::Gmail { .. });
        let credentials = match self.fresh(store, ws, id, credentials, now, force).await {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let outcome = providers.check(settings, &credentials).await;
        if !(connected && outcome.as_ref().is_some_and(|o| o.error_class == Some("auth_rejected"))) {
            return outcome;
        }
        match self.fresh(store, ws, id, credentials, now, true).await {
            Ok(c) => providers.check(settings, &c).await,
            Err(e) => failed(e),
        }
    }

    /// Revokes a connection's token at its provider: Google's refresh token (the whole grant),
    /// Slack's bot token. `None`: not a connection.
    pub async fn revoke(&self, credentials: &IntegrationCredentials) -> Option<Result<Revoked, RevokeError>> {
        let grant = credentials.grant()?;
        let Some(app) = self.apps.get(&grant.provider) else { return Some(Err(RevokeError::NotConfigured)) };
        let token = match (&grant.refresh_token, credentials.access_token()) {
            (Some(refresh), _) if grant.provider == OAuthProvider::Google => refresh.as_str(),
            (_, Some(access)) => access,
            (Some(refresh), None) => refresh.as_str(),
            (None, None) => return Some(Ok(Revoked::Already)),
        };
        Some(app.revoke(token).await.map_err(|_| RevokeError::Unavailable))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("the provider could not be reached to revoke the token; nothing was deleted, try again")]
    Unavailable,
    #[error("no OAuth app is configured for this provider, so its token cannot be revoked")]
    NotConfigured,
}

/// A connection's credentials from the tokens its provider issued at `now`.
pub fn connected_credentials(
    provider: OAuthProvider,
    tokens: chimatic_oauth::Tokens,
    kept_refresh_token: Option<String>,
    now: Timestamp,
) -> IntegrationCredentials {
    let grant = OAuthGrant {
        provider,
        // Providers that do not rotate refresh tokens send none with a refresh: keep the old.
        refresh_token: tokens.refresh_token.map(|t| t.into_inner()).or(kept_refresh_token),
        expires_at_ms: tokens.expires_in.map(|d| now.plus(d).0),
        scope: tokens.scope,
    };
    let access_token = tokens.access_token.into_inner();
    match provider {
        OAuthProvider::Google => IntegrationCredentials::Gmail { access_token, grant },
        OAuthProvider::Slack => IntegrationCredentials::Slack { bot_token: access_token, grant: Some(grant) },
    }
}
