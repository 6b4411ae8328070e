//! Delivery: workers that claim due notifications from the database queue under a lease, sign
//! and POST them, record every attempt, and schedule retries.

pub mod destination;
mod sender;
mod worker;

pub use destination::{DestinationError, DestinationPolicy};
pub use sender::{SendOutcome, WebhookSender};
pub use worker::{Dispatcher, DispatcherConfig};
