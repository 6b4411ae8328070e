mod postgres;
mod rows;
pub(crate) mod sql;
mod sqlite;

pub use rows::{
    AttemptRow, ClaimedJob, CompletedAttempt, Failover, FanoutProgress, FanoutRow, HELD, InsertOutcome, MessageRoute,
    NewEvent, NewNotificationRow, NotificationRow, NotificationRows, QueueOutcome, Target,
};
