//! The PostgreSQL backend: the same behaviour as the SQLite one, for deployments with many
//! stateless nodes. Notification data and the credential vault are separate databases, reached
//! through separate URLs (and so, in production, separate roles). Claims use
//! `FOR UPDATE SKIP LOCKED`, so nodes never wait on each other's jobs; migrations run under an
//! advisory lock, so nodes starting together do not race.

use std::str::FromStr;
use std::time::Duration;

use chimatic_domain::{Region, WorkspaceId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::StoreError;
use crate::audit::postgres as audit;
use crate::backend::*;
use crate::db::{Arg, Audited, Db, EachRow, PgQuery, Returned, Sql, Step, bind_all};

/// A set of migrations, the table that records which of them a database has, and the advisory
/// lock that serialises nodes migrating at once.
struct Schema {
    ledger: &'static str,
    lock: &'static str,
    migrations: &'static [(i64, &'static str)],
}

const DATA: Schema = Schema {
    ledger: "chimatic_migrations",
    lock: "chimatic.data",
    migrations: &[
        (1, include_str!("../../migrations/postgres/data/0001_spine.sql")),
        (2, include_str!("../../migrations/postgres/data/0002_directory.sql")),
        (3, include_str!("../../migrations/postgres/data/0003_events.sql")),
        (4, include_str!("../../migrations/postgres/data/0004_feedback.sql")),
        (5, include_str!("../../migrations/postgres/data/0005_audit.sql")),
        (6, include_str!("../../migrations/postgres/data/0006_lifecycle.sql")),
        (7, include_str!("../../migrations/postgres/data/0007_channel_purge_start.sql")),
        (8, include_str!("../../migrations/postgres/data/0008_portal_endpoints.sql")),
    ],
};
const VAULT: Schema = Schema {
    ledger: "chimatic_migrations",
    lock: "chimatic.vault",
    migrations: &[
        (1, include_str!("../../migrations/postgres/vault/0001_vault.sql")),
        (2, include_str!("../../migrations/postgres/vault/0002_kek_versions.sql")),
    ],
};
// Its own ledger, so the control tables can share a database with a region's data.
const CONTROL: Schema = Schema {
    ledger: "chimatic_control_migrations",
    lock: "chimatic.control",
    migrations: &[
        (1, include_str!("../../migrations/postgres/control/0001_control.sql")),
        (2, include_str!("../../migrations/postgres/control/0002_audit.sql")),
        (3, include_str!("../../migrations/postgres/control/0003_plans.sql")),
        (4, include_str!("../../migrations/postgres/control/0004_freeze.sql")),
        (5, include_str!("../../migrations/postgres/control/0005_payload_retention.sql")),
        (6, include_str!("../../migrations/postgres/control/0006_workspace_deletion.sql")),
        (7, include_str!("../../migrations/postgres/control/0007_erasure_sweep.sql")),
        (8, include_str!("../../migrations/postgres/control/0008_console.sql")),
        (9, include_str!("../../migrations/postgres/control/0009_console_team.sql")),
        (10, include_str!("../../migrations/postgres/control/0010_hourly_stats.sql")),
        (11, include_str!("../../migrations/postgres/control/0011_sso.sql")),
        (12, include_str!("../../migrations/postgres/control/0012_sso_policy.sql")),
        (13, include_str!("../../migrations/postgres/control/0013_connect_flows.sql")),
    ],
};

#[derive(Clone)]
pub struct PostgresBackend {
    pub(crate) pool: PgPool,
    pub(crate) claim_cursor: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PostgresBackend {
    /// Connects to a region's notification database and migrates it.
    pub async fn open_data(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &DATA).await
    }

    /// Connects to a region's credential vault database and migrates it.
    pub async fn open_vault(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &VAULT).await
    }

    /// Connects to the control plane's database and migrates it.
    pub async fn open_control(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, &CONTROL).await
    }

    async fn connect(url: &str, schema: &Schema) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url).map_err(|_| StoreError::Config("invalid PostgreSQL URL"))?;
        // No ping before every query: a broken connection fails its query and is replaced.
        // One direct connection first, so a refused TLS version is reported as such at start
        // (the pool would retry it until its acquire timeout).
        let mut first = <sqlx::PgConnection as sqlx::Connection>::connect_with(&opts).await?;
        require_tls13(&mut first).await?;
        let _ = sqlx::Connection::close(first).await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| Box::pin(async move { require_tls13(conn).await }))
            .connect_with(opts)
            .await?;
        migrate(&pool, schema).await?;
        Ok(Self { pool, claim_cursor: Default::default() })
    }
}

/// sqlx cannot be told a minimum TLS version, so every new connection checks what it
/// negotiated: a connection that uses TLS must use TLS 1.3, or it is closed before any query
/// carries data. (Plaintext is governed by `sslmode` in the URL.)
async fn require_tls13(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(conn).await?;
    if ssl && version.as_deref() != Some("TLSv1.3") {
        return Err(sqlx::Error::Protocol(format!(
            "the database connection negotiated {}, but Chimatic requires TLS 1.3",
            version.as_deref().unwrap_or("an unknown TLS version")
        )));
    }
    Ok(())
}

/// One statement of the catalogue with its parameters bound.
pub(crate) fn query(statement: &'static Sql, args: Vec<Arg>) -> PgQuery<'static> {
    bind_all(sqlx::query(statement.postgres()), args)
}

/// Takes a background job's lock for the rest of the transaction, without waiting: `false`
/// when another node holds it. Each batch of a job runs in one such transaction, so exactly one
/// node works on a job at a time and a node that dies releases it with its connection.
pub(crate) async fn try_job_lock(tx: &mut Transaction<'_, Postgres>, job: &str) -> Result<bool, StoreError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
        .bind(format!("chimatic.job.{job}"))
        .fetch_one(&mut **tx)
        .await?;
    Ok(locked)
}

#[async_trait::async_trait]
impl Db for PostgresBackend {
    async fn each_row(&self, sql: &'static Sql, args: Vec<Arg>, each: &mut EachRow<'_>) -> Result<(), StoreError> {
        for row in query(sql, args).fetch_all(&self.pool).await? {
            each(&row)?;
        }
        Ok(())
    }

    async fn execute(&self, sql: &'static Sql, args: Vec<Arg>, audit: Option<Audited>) -> Result<u64, StoreError> {
        let statement = query(sql, args);
        let Some(a) = audit else {
            return Ok(statement.execute(&self.pool).await?.rows_affected());
        };
        let mut tx = self.pool.begin().await?;
        let n = statement.execute(&mut *tx).await?.rows_affected();
        if n == 1 {
            audit::append_one(&mut tx, a.stream, a.ws, &a.event).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn transaction(&self, steps: Vec<Step>, audit: Option<Audited>) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = Vec::with_capacity(steps.len());
        for step in steps {
            let n = query(step.sql, step.args).execute(&mut *tx).await?.rows_affected();
            changed.push(n);
            if step.required && n == 0 {
                return Ok(changed);
            }
        }
        if let Some(a) = audit {
            audit::append_one(&mut tx, a.stream, a.ws, &a.event).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn execute_job(
        &self,
        job: &'static str,
        sql: &'static Sql,
        args: Vec<Arg>,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !try_job_lock(&mut tx, job).await? {
            return Ok(None);
        }
        let n = query(sql, args).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn execute_returning(&self, sql: &'static Sql, args: Vec<Arg>) -> Result<Vec<Returned>, StoreError> {
        let rows = query(sql, args).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| Box::new(r) as Returned).collect())
    }
}

impl PostgresBackend {
    async fn bind_region_once(&self, region: &Region) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO store_region (only_row, region) VALUES (1, $1) ON CONFLICT DO NOTHING")
            .bind(region.as_str())
            .execute(&self.pool)
            .await?;
        let bound: String = sqlx::query_scalar("SELECT region FROM store_region").fetch_one(&self.pool).await?;
        if bound == region.as_str() { Ok(()) } else { Err(StoreError::WrongRegion { bound, expected: region.clone() }) }
    }
}

async fn migrate(pool: &PgPool, schema: &Schema) -> Result<(), StoreError> {
    let (ledger, migrations) = (schema.ledger, schema.migrations);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(schema.lock).execute(&mut *tx).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
    )))
    .execute(&mut *tx)
    .await?;
    let newest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT MAX(version) FROM {ledger}")))
        .fetch_one(&mut *tx)
        .await?;
    let known = migrations.last().map(|m| m.0).unwrap_or(0);
    if let Some(v) = newest
        && v > known
    {
        return Err(StoreError::SchemaTooNew { found: v, known });
    }
    for (version, sql) in migrations {
        if newest.is_some_and(|n| n >= *version) {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {ledger} (version, applied_at) VALUES ($1, EXTRACT(EPOCH FROM now())::BIGINT)"
        )))
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[async_trait::async_trait]
impl DataBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }
}

#[async_trait::async_trait]
impl WorkspaceEraser for PostgresBackend {
    async fn delete_workspace_rows(
        &self,
        table: &'static str,
        key: &'static str,
        ws: WorkspaceId,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let n = sqlx::query(sqlx::AssertSqlSafe(delete_rows_sql(table, key)))
            .bind(ws.to_string())
            .bind(i64::from(limit))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n)
    }
}

#[async_trait::async_trait]
impl ControlBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }
}

#[async_trait::async_trait]
impl VaultBackend for PostgresBackend {
    async fn ping(&self) -> Result<(), StoreError> {
        DataBackend::ping(self).await
    }

    async fn bind_region(&self, region: &Region) -> Result<(), StoreError> {
        self.bind_region_once(region).await
    }
}
