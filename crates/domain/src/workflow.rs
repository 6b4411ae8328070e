//! Workflows: what an event becomes. A workflow is keyed by the event name and lists steps, one
//! per channel, each with its templates and (except in-app) the integration that delivers it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ChannelKind, IntegrationId};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStep {
    /// The subscriber channel type this step goes to.
    pub channel: ChannelKind,
    /// The integration that delivers it (`smtp` for email, `sms`, `slack`, `webhook`); none for `inapp`.
    pub integration_id: Option<IntegrationId>,
    /// An integration of the same kind that takes over when `integration_id` keeps failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_integration_id: Option<IntegrationId>,
    /// Failed attempts through `integration_id` (in a delivery round) before the fallback is
    /// used; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::whole_number::optional_u32")]
    #[schema(minimum = 1, maximum = 10)]
    pub failover_after: Option<u32>,
    /// Email subject (email only).
    pub subject: Option<String>,
    /// The plain-text body (every channel).
    pub text: String,
    /// The HTML body (email only), autoescaped.
    pub html: Option<String>,
    /// A title (in-app only).
    pub title: Option<String>,
}

/// Failed attempts before a step's fallback integration takes over, when the step does not say.
pub const DEFAULT_FAILOVER_AFTER: u32 = 2;

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

/// A subscriber's opt-outs: by channel type and by workflow category. Anything not listed is
/// allowed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channels": {"sms": false}, "categories": {"marketing": false}}))]
pub struct Preferences {
    /// e.g. `{"sms": false}`.
    #[serde(default)]
    pub channels: BTreeMap<ChannelKind, bool>,
    /// e.g. `{"marketing": false}`; names are 1 to 64 of `a-z 0-9 . _ -`.
    #[serde(default)]
    #[schema(value_type = BTreeMap<crate::patterns::CategoryName, bool>)]
    pub categories: BTreeMap<String, bool>,
}

impl Preferences {
    pub fn allows(&self, channel: ChannelKind, category: Option<&str>) -> bool {
        let channel_ok = self.channels.get(&channel).copied().unwrap_or(true);
        let category_ok = category.and_then(|c| self.categories.get(c)).copied().unwrap_or(true);
        channel_ok && category_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_outs_by_channel_or_category_and_everything_else_allowed() {
        let p: Preferences =
            serde_json::from_value(serde_json::json!({"channels": {"sms": false}, "categories": {"marketing": false}}))
                .unwrap();
        assert!(!p.allows(ChannelKind::Sms, None));
        assert!(!p.allows(ChannelKind::Email, Some("marketing")));
        assert!(p.allows(ChannelKind::Email, Some("orders")));
        assert!(p.allows(ChannelKind::Email, None));
        assert!(Preferences::default().allows(ChannelKind::Sms, Some("marketing")));
        assert!(serde_json::from_value::<Preferences>(serde_json::json!({"channels": {"fax": false}})).is_err());
    }
}
