//! Delivery: workers that claim due notifications from the database queue under a lease, hand
//! them to a provider, record every attempt, and schedule retries.

mod worker;

pub use worker::{Dispatcher, DispatcherConfig};
