//! Delivery: workers that claim due notifications from the database queue under a lease, sign
//! and POST them, record every attempt, and schedule retries.

pub mod destination;
mod sender;
mod tls;
mod worker;

pub use destination::{DestinationError, DestinationPolicy};
pub use sender::{SendOutcome, SenderBuildError, WebhookSender};
pub use tls::{PinMismatch, TrustError};
pub use worker::{Dispatcher, DispatcherConfig};
