//! The plan of an event: one message per workflow step per subscriber channel of that step's
//! type, rendered with the subscriber's attributes and the event's data. No I/O here: intake
//! loads, this plans, the store queues.

use std::collections::HashSet;

use chimatic_domain::{ChannelAddress, DEFAULT_FAILOVER_AFTER, NotificationStatus, SubscriberChannelId};
use chimatic_store::records::{PlannedMessage, SubscriberChannel, Workflow};
use chimatic_store::{Failover, Recipient};
use chimatic_templates::{Renderer, TemplateError};
use serde_json::{Value, json};

/// A recipient or step that produced no message, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Skip {
    pub index: usize,
    pub step: Option<usize>,
    pub reason: &'static str,
}

/// Plans an event's messages. Channels in `suppressed` (their address is on the workspace's
/// suppression list) get a `suppressed` message that is never sent.
pub fn plan(
    workflow: &Workflow,
    recipients: &[Recipient],
    suppressed: &HashSet<SubscriberChannelId>,
    data: &Value,
    renderer: &Renderer,
) -> Result<(Vec<PlannedMessage>, Vec<Skip>), (usize, TemplateError)> {
    let mut messages = Vec::new();
    let mut skips = Vec::new();
    for r in recipients {
        let attributes: Value = serde_json::from_slice(r.subscriber.attributes.expose()).unwrap_or_else(|_| json!({}));
        let context = json!({"subscriber": attributes, "data": data});
        for (i, step) in workflow.definition.steps.iter().enumerate() {
            let targets: Vec<&SubscriberChannel> =
                r.channels.iter().filter(|c| c.address.kind() == step.channel).collect();
            if targets.is_empty() {
                skips.push(Skip { index: r.index, step: Some(i), reason: "no_channel" });
                continue;
            }
            // An opted-out message is recorded as `skipped`, not rendered and never sent.
            let allowed = r.subscriber.preferences.allows(step.channel, workflow.definition.category.as_deref());
            if !allowed {
                skips.push(Skip { index: r.index, step: Some(i), reason: "opted_out" });
            }
            let content =
                if allowed { renderer.render(step, &context).map_err(|e| (i, e))? } else { Default::default() };
            let failover = step.fallback_integration_id.map(|integration_id| Failover {
                integration_id,
                after: step.failover_after.unwrap_or(DEFAULT_FAILOVER_AFTER),
            });
            for channel in targets {
                // Every channel but the in-app inbox is delivered through the step's integration.
                let (integration_id, failover) = match channel.address {
                    ChannelAddress::Inapp => (None, None),
                    _ => (step.integration_id, failover),
                };
                let status = if !allowed {
                    NotificationStatus::Skipped
                } else if suppressed.contains(&channel.id) {
                    skips.push(Skip { index: r.index, step: Some(i), reason: "suppressed" });
                    NotificationStatus::Suppressed
                } else {
                    NotificationStatus::Queued
                };
                messages.push(PlannedMessage {
                    subscriber_id: r.subscriber.id,
                    subscriber_channel_id: channel.id,
                    kind: step.channel,
                    integration_id,
                    failover,
                    content: content.clone(),
                    status,
                });
            }
        }
    }
    Ok((messages, skips))
}

#[cfg(test)]
mod tests {
    use chimatic_domain::{
        ChannelKind, EmailAddress, Sensitive, SubscriberChannelId, SubscriberId, Timestamp, WorkflowDefinition,
        WorkflowId, WorkflowStep,
    };

    use chimatic_store::records::Subscriber;

    use super::*;

    fn subscriber(name: &str) -> Subscriber {
        Subscriber {
            id: SubscriberId::generate(),
            external_id: Sensitive::new(name.into()),
            attributes: Sensitive::new(serde_json::to_vec(&json!({"name": name})).unwrap()),
            preferences: Default::default(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn channel(address: ChannelAddress) -> SubscriberChannel {
        SubscriberChannel {
            id: SubscriberChannelId::generate(),
            subscriber_id: SubscriberId::generate(),
            address,
            created_at: Timestamp(0),
            signing: None,
            disabled_at: None,
        }
    }

    #[test]
    fn one_message_per_step_and_matching_channel_personalised() {
        let workflow = Workflow {
            id: WorkflowId::generate(),
            key: "welcome".into(),
            definition: WorkflowDefinition {
                category: None,
                steps: vec![
                    WorkflowStep {
                        channel: ChannelKind::Email,
                        integration_id: None,
                        fallback_integration_id: None,
                        failover_after: None,
                        subject: Some("Hi".into()),
                        text: "Hi {{ subscriber.name }}, {{ data.code }}".into(),
                        html: None,
                        title: None,
                    },
                    WorkflowStep {
                        channel: ChannelKind::Inapp,
                        integration_id: None,
                        fallback_integration_id: None,
                        failover_after: None,
                        subject: None,
                        text: "Welcome".into(),
                        html: None,
                        title: None,
                    },
                ],
            },
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let email = |a: &str| channel(ChannelAddress::Email(EmailAddress::parse(a).unwrap()));
        let recipients = vec![
            Recipient {
                index: 0,
                subscriber: subscriber("ann"),
                channels: vec![email("ann@example.com"), email("ann@work.example"), channel(ChannelAddress::Inapp)],
            },
            Recipient { index: 1, subscriber: subscriber("bob"), channels: vec![] },
        ];
        let ann_work = recipients[0].channels[1].id;
        let suppressed = HashSet::from([ann_work]);
        let (messages, skips) =
            plan(&workflow, &recipients, &suppressed, &json!({"code": 7}), &Renderer::new()).unwrap();
        assert_eq!(messages.len(), 3, "two emails and one in-app message for ann");
        assert_eq!(messages[0].content.text, "Hi ann, 7");
        assert_eq!(messages[0].status, NotificationStatus::Queued);
        assert_eq!((messages[1].subscriber_channel_id, messages[1].status), (ann_work, NotificationStatus::Suppressed));
        assert_eq!(messages[2].kind, ChannelKind::Inapp);
        assert_eq!(
            skips,
            vec![
                Skip { index: 0, step: Some(0), reason: "suppressed" },
                Skip { index: 1, step: Some(0), reason: "no_channel" },
                Skip { index: 1, step: Some(1), reason: "no_channel" }
            ]
        );
    }
}
