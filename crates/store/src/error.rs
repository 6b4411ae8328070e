use chimatic_crypto::CryptoError;

/// Storage errors. Messages name tables and conditions, never stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A request the store cannot carry out as asked (a client error).
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("configuration error: {0}")]
    Config(&'static str),
    #[error("database file error: {0}")]
    Io(String),
    #[error("the database schema (version {found}) is newer than this build knows ({known}); upgrade chimatic")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the store is shutting down")]
    Unavailable,
    #[error("this database belongs to region `{bound}`, not `{expected}`: check the region's database URLs")]
    WrongRegion { bound: String, expected: chimatic_domain::Region },
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
}
