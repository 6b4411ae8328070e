//! What providers report back about messages (delivery receipts, bounces, complaints), read from
//! their webhook formats. Signatures are checked before any of this runs; this only interprets.
//!
//! - Email providers: the event format of Standard Webhooks senders such as Resend (Svix), with
//!   SES bounce types: `{"type": "email.bounced", "data": {"to": [...], "bounce": {"type":
//!   "Permanent"}}}`.
//! - SMS: Twilio's status callbacks (form fields `MessageSid`, `MessageStatus`, `To`, `ErrorCode`).

use chimatic_domain::{ChannelAddress, EmailAddress, PhoneNumber};
use serde::Deserialize;

/// What happened to a message, as far as the provider says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Delivered,
    /// `permanent`: the address does not exist or refuses mail for good (a hard bounce).
    Bounced {
        permanent: bool,
    },
    /// The recipient marked the message as spam.
    Complained,
    /// An SMS that could not be delivered; `permanent` for numbers that cannot receive messages
    /// or whose owner replied STOP.
    Failed {
        permanent: bool,
    },
    /// Anything else (sent, queued, opened, delayed): recorded only.
    Other,
}

impl ReportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Delivered => "delivered",
            ReportKind::Bounced { permanent: true } => "hard_bounce",
            ReportKind::Bounced { permanent: false } => "soft_bounce",
            ReportKind::Complained => "complaint",
            ReportKind::Failed { permanent: true } => "permanent_failure",
            ReportKind::Failed { permanent: false } => "failure",
            ReportKind::Other => "other",
        }
    }
}

#[derive(Debug)]
pub struct ProviderReport {
    /// The provider's id for this report, to recognise redeliveries.
    pub event_id: String,
    pub kind: ReportKind,
    /// The provider's own name for what happened (`email.bounced`, `undelivered`).
    pub provider_status: String,
    /// The provider's detail code (bounce subtype, Twilio error code), if any.
    pub code: Option<String>,
    pub recipients: Vec<ChannelAddress>,
    /// Why the recipients go on the suppression list, if they do: `hard_bounce`, `complaint`,
    /// or `unsubscribed` (an SMS recipient replied STOP).
    pub suppression_reason: Option<&'static str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("the body is not a provider event this integration understands: {0}")]
    Malformed(&'static str),
}

#[derive(Deserialize)]
struct EmailEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: EmailEventData,
}

#[derive(Deserialize, Default)]
struct EmailEventData {
    #[serde(default)]
    to: Vec<String>,
    bounce: Option<Bounce>,
}

#[derive(Deserialize)]
struct Bounce {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "subType")]
    sub_type: Option<String>,
}

/// An email provider's event, delivered as a Standard Webhook with id `webhook_id`.
pub fn email_report(webhook_id: &str, body: &[u8]) -> Result<ProviderReport, InboundError> {
    let event: EmailEvent = serde_json::from_slice(body).map_err(|_| InboundError::Malformed("expected JSON"))?;
    let recipients = event
        .data
        .to
        .iter()
        .map(|a| EmailAddress::parse(a).map(ChannelAddress::Email))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| InboundError::Malformed("`data.to` holds an invalid address"))?;
    let bounce_type = event.data.bounce.as_ref().and_then(|b| b.kind.clone());
    let kind = match event.kind.as_str() {
        "email.delivered" => ReportKind::Delivered,
        // SES (and so Resend) bounce types: Permanent, Transient, Undetermined.
        "email.bounced" => ReportKind::Bounced { permanent: bounce_type.as_deref() == Some("Permanent") },
        "email.complained" => ReportKind::Complained,
        _ => ReportKind::Other,
    };
    let suppression_reason = match kind {
        ReportKind::Bounced { permanent: true } => Some("hard_bounce"),
        ReportKind::Complained => Some("complaint"),
        _ => None,
    };
    if suppression_reason.is_some() && recipients.is_empty() {
        return Err(InboundError::Malformed("a bounce or complaint without `data.to`"));
    }
    let code = match (bounce_type, event.data.bounce.and_then(|b| b.sub_type)) {
        (Some(t), Some(s)) => Some(format!("{t}/{s}")),
        (t, s) => t.or(s),
    };
    Ok(ProviderReport {
        event_id: webhook_id.to_string(),
        kind,
        provider_status: event.kind,
        code,
        recipients,
        suppression_reason,
    })
}

/// Twilio error codes that mean the number will never take a message from this sender.
const PERMANENT_SMS_ERRORS: &[&str] = &[
    "21211", // invalid 'To' number
    "21614", // not a mobile number
    "30005", // unknown destination handset
    "30006", // landline or unreachable carrier
];
/// The recipient replied STOP: sending again is not allowed.
const UNSUBSCRIBED_SMS_ERROR: &str = "21610";

/// A Twilio message status callback (its form fields).
pub fn twilio_report(fields: &[(String, String)]) -> Result<ProviderReport, InboundError> {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let sid = field("MessageSid").or(field("SmsSid")).ok_or(InboundError::Malformed("`MessageSid` is missing"))?;
    let status = field("MessageStatus").or(field("SmsStatus")).ok_or(InboundError::Malformed("no status"))?;
    let to = field("To").ok_or(InboundError::Malformed("`To` is missing"))?;
    let recipient = PhoneNumber::parse(to).map_err(|_| InboundError::Malformed("`To` is not an E.164 number"))?;
    let code = field("ErrorCode").filter(|c| !c.is_empty()).map(str::to_string);
    let kind = match status {
        "delivered" | "read" => ReportKind::Delivered,
        "failed" | "undelivered" => ReportKind::Failed {
            permanent: code
                .as_deref()
                .is_some_and(|c| c == UNSUBSCRIBED_SMS_ERROR || PERMANENT_SMS_ERRORS.contains(&c)),
        },
        _ => ReportKind::Other,
    };
    let suppression_reason = match (kind, code.as_deref()) {
        (ReportKind::Failed { permanent: true }, Some(UNSUBSCRIBED_SMS_ERROR)) => Some("unsubscribed"),
        (ReportKind::Failed { permanent: true }, _) => Some("hard_bounce"),
        _ => None,
    };
    Ok(ProviderReport {
        // A message moves through several statuses, each reported once.
        event_id: format!("{sid}:{status}"),
        kind,
        provider_status: status.to_string(),
        code,
        recipients: vec![ChannelAddress::Sms(recipient)],
        suppression_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn email_hard_bounces_and_complaints_suppress_soft_bounces_do_not() {
        let hard = br#"{"type":"email.bounced","created_at":"2026-11-24T10:00:00Z",
            "data":{"email_id":"e1","to":["Gone@Example.com"],"bounce":{"type":"Permanent","subType":"General"}}}"#;
        let r = email_report("msg_1", hard).unwrap();
        assert_eq!(r.kind, ReportKind::Bounced { permanent: true });
        assert_eq!(r.suppression_reason, Some("hard_bounce"));
        assert_eq!(r.code.as_deref(), Some("Permanent/General"));
        assert_eq!(r.recipients.len(), 1);

        let soft = br#"{"type":"email.bounced","data":{"to":["a@example.com"],"bounce":{"type":"Transient"}}}"#;
        let r = email_report("msg_2", soft).unwrap();
        assert_eq!((r.kind, r.suppression_reason), (ReportKind::Bounced { permanent: false }, None));

        let complaint = br#"{"type":"email.complained","data":{"to":["a@example.com"]}}"#;
        assert_eq!(email_report("msg_3", complaint).unwrap().suppression_reason, Some("complaint"));

        let delivered = br#"{"type":"email.delivered","data":{"to":["a@example.com"]}}"#;
        assert_eq!(email_report("msg_4", delivered).unwrap().suppression_reason, None);
        let opened = br#"{"type":"email.opened","data":{}}"#;
        assert_eq!(email_report("msg_5", opened).unwrap().kind, ReportKind::Other);
    }

    #[test]
    fn malformed_email_events_are_refused() {
        assert!(email_report("m", b"not json").is_err());
        assert!(email_report("m", br#"{"data":{}}"#).is_err(), "type is required");
        assert!(email_report("m", br#"{"type":"email.bounced","data":{"to":["nope"]}}"#).is_err());
        assert!(
            email_report("m", br#"{"type":"email.complained","data":{"to":[]}}"#).is_err(),
            "a complaint must name its recipient"
        );
    }

    #[test]
    fn twilio_permanent_failures_suppress_and_stop_replies_count_as_unsubscribed() {
        let base = [("MessageSid", "SM1"), ("To", "+14155550123"), ("AccountSid", "AC1")];
        let with = |status: &str, code: &str| {
            let mut f = form(&base);
            f.extend(form(&[("MessageStatus", status), ("ErrorCode", code)]));
            twilio_report(&f).unwrap()
        };
        let r = with("undelivered", "30005");
        assert_eq!((r.kind, r.suppression_reason), (ReportKind::Failed { permanent: true }, Some("hard_bounce")));
        assert_eq!(r.event_id, "SM1:undelivered");
        assert_eq!(with("failed", "21610").suppression_reason, Some("unsubscribed"));
        let r = with("undelivered", "30003");
        assert_eq!((r.kind, r.suppression_reason), (ReportKind::Failed { permanent: false }, None));
        assert_eq!(with("delivered", "").kind, ReportKind::Delivered);
        assert_eq!(with("sent", "").kind, ReportKind::Other);
    }

    #[test]
    fn malformed_twilio_callbacks_are_refused() {
        assert!(twilio_report(&form(&[("MessageStatus", "failed"), ("To", "+14155550123")])).is_err());
        assert!(twilio_report(&form(&[("MessageSid", "SM1"), ("MessageStatus", "failed"), ("To", "555")])).is_err());
    }
}
