//! The background engine of a data-plane node: what an accepted event becomes (intake), the
//! dispatcher that claims due notifications under a lease, hands them to providers and
//! schedules retries, the fan-out worker that reaches topics' members in batches, and the
//! maintenance jobs (purges, key re-wrapping, audit signing, integration checks).

pub mod connections;
mod dispatcher;
mod fanout;
pub mod intake;
mod jobs;

pub use connections::{Connections, RefreshError, RevokeError, connected_credentials};
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use fanout::FanoutWorker;
pub use jobs::{Jobs, sign_heads};
