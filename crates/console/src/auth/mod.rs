//! Who may use the console: passwords and their standard, sessions and their timeouts,
//! sign-in throttling, second factors and single-use links. Pure, apart from hashing.

pub mod link;
pub mod password;
pub mod session;
pub mod throttle;
pub mod two_factor;

/// Where an OAuth or OpenID Connect provider sends the browser back: a code (or an error) and
/// the flow's state.
#[derive(serde::Deserialize)]
pub struct ProviderCallback {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error: String,
}
