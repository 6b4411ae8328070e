//! Storage for Chimatic.
//!
//! Two layers: a backend ([`DataBackend`], [`VaultBackend`]) that moves rows of ciphertext in and
//! out of a database and knows SQL, and [`Store`], the one interface the rest of the system uses,
//! which owns encryption, DEKs and the tenant scoping of every call. Backends never see plaintext.

mod backend;
mod committer;
mod error;
mod fairness;
mod keyring;
mod postgres;
pub mod records;
mod sqlite;
mod store;

pub use backend::{
    ApiKeyRow, AttemptRow, ChannelRow, ClaimedJob, CompletedAttempt, DataBackend, InsertOutcome, NewNotificationRow,
    NotificationRow, QueueOutcome, VaultBackend, WrappedKeyRow,
};
pub use error::StoreError;
pub use keyring::Keyring;
pub use postgres::PostgresBackend;
pub use sqlite::{SqliteBackend, SqliteFiles};
pub use store::{NewNotification, Store};
