//! Workflows: what an event becomes. A workflow is keyed by the event name and lists steps, one
//! per channel, each with its templates and (except in-app) the integration that delivers it.

use serde::{Deserialize, Serialize};

use crate::{ChannelKind, IntegrationId};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStep {
    /// The subscriber channel type this step goes to.
    pub channel: ChannelKind,
    /// The integration that delivers it (`smtp` for email, `sms`, `slack`, `webhook`); none for `inapp`.
    pub integration_id: Option<IntegrationId>,
    /// Email subject (email only).
    pub subject: Option<String>,
    /// The plain-text body (every channel).
    pub text: String,
    /// The HTML body (email only), autoescaped.
    pub html: Option<String>,
    /// A title (in-app only).
    pub title: Option<String>,
}

/// What a workflow does with an event: its steps, in order, and an optional category that
/// subscribers can opt out of.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    pub category: Option<String>,
    pub steps: Vec<WorkflowStep>,
}

/// A step rendered for one subscriber: what is stored (encrypted under the subscriber's key) and
/// sent.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RenderedMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Whether `name` is a valid event name / workflow key: 1 to 100 of `a-z 0-9 . _ -`.
pub fn is_event_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}
