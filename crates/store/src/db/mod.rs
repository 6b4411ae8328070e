//! Dialect plumbing, with no domain knowledge: the statement catalogue ([`sql`]), row access
//! ([`columns`]), bound values ([`Arg`]), the primitives every aggregate's shared operations run
//! on ([`Db`]), and the two backends' connections, writer, migrations and locks.

pub(crate) mod columns;
pub(crate) mod committer;
pub(crate) mod fairness;
#[cfg(test)]
mod guards;
pub mod postgres;
pub(crate) mod sql;
pub mod sqlite;

use chimatic_audit::{AuditEvent, Stream};
use chimatic_domain::{
    ApiKeyId, ChannelId, EventId, FanoutId, InboundEventId, IntegrationId, InvitationId, NotificationId,
    SubscriberChannelId, SubscriberId, SuppressionId, Timestamp, TopicId, UserId, WorkflowId, WorkspaceId,
};

pub use columns::Columns;
pub use sql::Sql;

use crate::StoreError;

/// A value bound to a statement parameter. Owned, because SQLite's writes run on the blocking
/// pool; typed, because PostgreSQL needs a type even for a NULL.
#[derive(Clone, Debug)]
pub enum Arg {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Blob(Vec<u8>),
    OptBlob(Option<Vec<u8>>),
    Bool(bool),
    /// A list: a JSON array on SQLite (read with `json_each`), an array on PostgreSQL (`ANY`).
    TextList(Vec<String>),
    /// One parameter of many rows, for a PostgreSQL multi-row statement (`UNNEST`); see
    /// [`arrays_of`].
    Array(Array),
}

impl Arg {
    /// A list of ids (or any values shown as text), bound as one parameter.
    pub fn list<T: ToString>(items: &[T]) -> Self {
        Arg::TextList(items.iter().map(ToString::to_string).collect())
    }
}

/// The values of one parameter across rows, as a PostgreSQL array (NULLs kept).
#[derive(Clone, Debug)]
pub enum Array {
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
    Blobs(Vec<Option<Vec<u8>>>),
    Bools(Vec<bool>),
}

/// Turns the parameters of many single-row statements (each row's `?1, ?2, …`) into one array
/// parameter per position, so one `UNNEST(?1, ?2, …)` statement writes every row: the row-level
/// argument builders stay the single definition of what a row binds. `None` if the rows differ
/// in shape (a position bound as text in one row and as a number in another).
pub(crate) fn arrays_of(rows: impl IntoIterator<Item = Vec<Arg>>) -> Option<Vec<Arg>> {
    let mut columns: Vec<Array> = Vec::new();
    for (n, row) in rows.into_iter().enumerate() {
        if n == 0 {
            columns = row.iter().map(Array::empty_like).collect::<Option<_>>()?;
        }
        if row.len() != columns.len() {
            return None;
        }
        for (column, arg) in columns.iter_mut().zip(row) {
            column.push(arg)?;
        }
    }
    Some(columns.into_iter().map(Arg::Array).collect())
}

impl Array {
    fn empty_like(arg: &Arg) -> Option<Self> {
        Some(match arg {
            Arg::Int(_) | Arg::OptInt(_) => Array::Ints(Vec::new()),
            Arg::Text(_) | Arg::OptText(_) => Array::Texts(Vec::new()),
            Arg::Blob(_) | Arg::OptBlob(_) => Array::Blobs(Vec::new()),
            Arg::Bool(_) => Array::Bools(Vec::new()),
            Arg::TextList(_) | Arg::Array(_) => return None,
        })
    }

    fn push(&mut self, arg: Arg) -> Option<()> {
        match (self, arg) {
            (Array::Ints(c), Arg::Int(v)) => c.push(Some(v)),
            (Array::Ints(c), Arg::OptInt(v)) => c.push(v),
            (Array::Texts(c), Arg::Text(v)) => c.push(Some(v)),
            (Array::Texts(c), Arg::OptText(v)) => c.push(v),
            (Array::Blobs(c), Arg::Blob(v)) => c.push(Some(v)),
            (Array::Blobs(c), Arg::OptBlob(v)) => c.push(v),
            (Array::Bools(c), Arg::Bool(v)) => c.push(v),
            _ => return None,
        }
        Some(())
    }
}

/// The parameters `?1, ?2, …` of a statement, in order.
macro_rules! args {
    ($($value:expr),* $(,)?) => { vec![$($crate::db::Arg::from($value)),*] };
}
pub(crate) use args;

macro_rules! arg_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => { $(impl From<$t> for Arg { fn from($v: $t) -> Self { $e } })* };
}
arg_from! {
    i64 => |v| Arg::Int(v),
    u32 => |v| Arg::Int(i64::from(v)),
    bool => |v| Arg::Bool(v),
    Option<i64> => |v| Arg::OptInt(v),
    Option<u32> => |v| Arg::OptInt(v.map(i64::from)),
    Timestamp => |v| Arg::Int(v.0),
    Option<Timestamp> => |v| Arg::OptInt(v.map(|t| t.0)),
    String => |v| Arg::Text(v),
    &str => |v| Arg::Text(v.to_string()),
    &String => |v| Arg::Text(v.clone()),
    Option<String> => |v| Arg::OptText(v),
    Option<&str> => |v| Arg::OptText(v.map(str::to_string)),
    Vec<u8> => |v| Arg::Blob(v),
    &[u8] => |v| Arg::Blob(v.to_vec()),
    &Vec<u8> => |v| Arg::Blob(v.clone()),
    &[u8; 32] => |v| Arg::Blob(v.to_vec()),
    Option<Vec<u8>> => |v| Arg::OptBlob(v),
    Option<&[u8]> => |v| Arg::OptBlob(v.map(<[u8]>::to_vec)),
    chimatic_domain::Role => |v| Arg::Text(v.as_str().to_string()),
}

macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl From<$id> for Arg { fn from(v: $id) -> Self { Arg::Text(v.to_string()) } }
        impl From<Option<$id>> for Arg { fn from(v: Option<$id>) -> Self { Arg::OptText(v.map(|v| v.to_string())) } }
    )*};
}
id_args!(
    WorkspaceId,
    ApiKeyId,
    ChannelId,
    NotificationId,
    SubscriberId,
    SubscriberChannelId,
    IntegrationId,
    WorkflowId,
    EventId,
    TopicId,
    FanoutId,
    SuppressionId,
    InboundEventId,
    UserId,
    InvitationId
);

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput::Borrowed, ValueRef};
        Ok(Borrowed(match self {
            Arg::Int(v) | Arg::OptInt(Some(v)) => ValueRef::Integer(*v),
            Arg::Bool(v) => ValueRef::Integer(i64::from(*v)),
            Arg::Text(v) | Arg::OptText(Some(v)) => ValueRef::Text(v.as_bytes()),
            Arg::Blob(v) | Arg::OptBlob(Some(v)) => ValueRef::Blob(v),
            Arg::OptInt(None) | Arg::OptText(None) | Arg::OptBlob(None) => ValueRef::Null,
            Arg::TextList(v) => {
                let json = serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                return Ok(rusqlite::types::ToSqlOutput::from(json));
            }
            Arg::Array(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure("an array parameter is PostgreSQL only".into()));
            }
        }))
    }
}

pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// `args` bound to a PostgreSQL statement in order.
pub(crate) fn bind_all(mut query: PgQuery<'_>, args: Vec<Arg>) -> PgQuery<'_> {
    for arg in args {
        query = match arg {
            Arg::Int(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::Blob(v) => query.bind(v),
            Arg::OptBlob(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::TextList(v) => query.bind(v),
            Arg::Array(Array::Ints(v)) => query.bind(v),
            Arg::Array(Array::Texts(v)) => query.bind(v),
            Arg::Array(Array::Blobs(v)) => query.bind(v),
            Arg::Array(Array::Bools(v)) => query.bind(v),
        };
    }
    query
}

/// An audit entry to append in the same transaction as the change it records.
pub struct Audited {
    pub stream: Stream,
    pub ws: WorkspaceId,
    pub event: AuditEvent,
}

impl Audited {
    pub fn data(ws: WorkspaceId, event: &AuditEvent) -> Option<Self> {
        Some(Self { stream: Stream::Data, ws, event: event.clone() })
    }

    pub fn control(ws: WorkspaceId, event: &AuditEvent) -> Option<Self> {
        Some(Self { stream: Stream::Control, ws, event: event.clone() })
    }
}

/// Called once per result row.
pub type EachRow<'a> = dyn FnMut(&dyn Columns) -> Result<(), StoreError> + Send + 'a;

/// What both backends do for the operations that are the same on both: a read, and a write of
/// one statement (audited when it changed exactly one row). Operations that differ on purpose
/// (locking, statement order, arrays) are written per backend next to each other.
#[async_trait::async_trait]
pub trait Db: Send + Sync + 'static {
    /// Runs a read and calls `each` for every row.
    async fn each_row(&self, sql: &'static Sql, args: Vec<Arg>, each: &mut EachRow<'_>) -> Result<(), StoreError>;

    /// Runs one statement in its own transaction; with `audit`, appends it in the same
    /// transaction when the statement changed exactly one row. The rows changed.
    async fn execute(&self, sql: &'static Sql, args: Vec<Arg>, audit: Option<Audited>) -> Result<u64, StoreError>;

    /// Runs `steps` in order in one transaction. A `required` step that changes no row ends it
    /// there: nothing after it runs and nothing is audited. Otherwise `audit`, if any, is
    /// appended last. The rows each step that ran changed.
    async fn transaction(&self, steps: Vec<Step>, audit: Option<Audited>) -> Result<Vec<u64>, StoreError>;

    /// Runs one batch of a background job (a maintenance statement over every workspace): on
    /// PostgreSQL under the job's advisory lock, taken without waiting (`None` when another
    /// node holds it); SQLite's single writer makes every batch exclusive already.
    async fn execute_job(
        &self,
        job: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> Result<Option<u64>, StoreError>;

    /// Runs one write that returns rows (`… RETURNING`) in its own transaction.
    async fn execute_returning(&self, sql: &'static Sql, args: Vec<Arg>) -> Result<Vec<Returned>, StoreError>;
}

/// One statement of a [`Db::transaction`].
pub struct Step {
    pub sql: &'static Sql,
    pub args: Vec<Arg>,
    /// Changing no row ends the transaction here.
    pub required: bool,
}

impl Step {
    pub fn new(sql: &'static Sql, args: Vec<Arg>) -> Self {
        Self { sql, args, required: false }
    }

    pub fn required(sql: &'static Sql, args: Vec<Arg>) -> Self {
        Self { sql, args, required: true }
    }
}

/// A row a write returned.
pub type Returned = Box<dyn Columns + Send>;

/// Every row a write returned, mapped.
pub async fn write_all<T, D: Db + ?Sized>(
    db: &D,
    sql: &'static Sql,
    args: Vec<Arg>,
    map: fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    db.execute_returning(sql, args).await?.iter().map(|r| map(&**r)).collect()
}

/// Every row of a read, mapped.
pub async fn fetch_all<T: Send, D: Db + ?Sized>(
    db: &D,
    sql: &'static Sql,
    args: Vec<Arg>,
    map: fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    db.each_row(sql, args, &mut |r| {
        out.push(map(r)?);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The first row of a read, mapped.
pub async fn fetch_optional<T: Send, D: Db + ?Sized>(
    db: &D,
    sql: &'static Sql,
    args: Vec<Arg>,
    map: fn(&dyn Columns) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut out = None;
    db.each_row(sql, args, &mut |r| {
        if out.is_none() {
            out = Some(map(r)?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Whether a write changed exactly one row.
pub async fn execute_one<D: Db + ?Sized>(
    db: &D,
    sql: &'static Sql,
    args: Vec<Arg>,
    audit: Option<Audited>,
) -> Result<bool, StoreError> {
    Ok(db.execute(sql, args, audit).await? == 1)
}

/// Every statement of the catalogue, for the drift tests.
#[cfg(test)]
pub(crate) fn catalogue() -> Vec<&'static Sql> {
    let aggregates: &[&[&'static Sql]] = &[
        crate::channels::sql::ALL,
        crate::feedback::sql::ALL,
        crate::integrations::sql::ALL,
        crate::keys::sql::ALL,
        crate::notifications::sql::ALL,
        crate::subscribers::sql::ALL,
        crate::topics::sql::ALL,
        crate::users::sql::ALL,
        crate::vault::sql::ALL,
        crate::workflows::sql::ALL,
        crate::workspaces::sql::ALL,
    ];
    // The audit tables' statements come in two sets, one per stream.
    [aggregates.concat(), crate::audit::sql::catalogue()].concat()
}
