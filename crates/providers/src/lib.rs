//! Providers: every outbound call Chimatic makes — signed webhooks, SMTP email, SMS and Slack —
//! with the guards they share: SSRF-safe destinations, TLS 1.3 by default, optional certificate
//! pinning, bounded time. Health checks prove an integration works without sending user data.

pub mod destination;
mod health;
pub mod inbound;
mod messages;
mod tls;
mod webhook;

pub use destination::{DestinationError, DestinationPolicy};
pub use health::{CheckOutcome, ProviderClient};
pub use messages::{MessageMeta, SmtpRelay, webhook_body};
pub use tls::{PinMismatch, TrustError};
pub use webhook::{SendOutcome, SenderBuildError, WebhookSender};
