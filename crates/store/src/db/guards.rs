//! Drift guards over the statement catalogue: every statement prepares on the dialects it is
//! written for, and every statement on a tenant table is scoped by `workspace_id` unless it
//! says why not.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use sqlx::{Connection, Executor};

use super::catalogue;
use super::sql::Dialects;
use crate::backend::{CONTROL_TABLES, DATA_KEY_TABLE, DATA_TABLES, VAULT_TABLES};

/// One in-memory SQLite database per store, migrated.
fn sqlite_stores() -> Vec<rusqlite::Connection> {
    [&crate::db::sqlite::DATA, &crate::db::sqlite::VAULT, &crate::db::sqlite::CONTROL]
        .into_iter()
        .map(|schema| {
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            crate::db::sqlite::migrate(&mut conn, schema).unwrap();
            conn
        })
        .collect()
}

#[test]
fn every_statement_prepares_on_sqlite() {
    let stores = sqlite_stores();
    let mut failures = Vec::new();
    for sql in catalogue().into_iter().filter(|s| s.dialects != Dialects::PostgresOnly) {
        let errors: Vec<String> =
            stores.iter().filter_map(|c| c.prepare(sql.sqlite()).err().map(|e| e.to_string())).collect();
        if errors.len() == stores.len() {
            failures.push(format!("{}: {}", sql.name, errors.join(" / ")));
        }
    }
    assert!(failures.is_empty(), "statements that prepare in no SQLite store:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn every_statement_prepares_on_postgres() {
    let admin = std::env::var("CHIMATIC_TEST_POSTGRES_URL")
        .expect("CHIMATIC_TEST_POSTGRES_URL must name a PostgreSQL admin URL (scripts/test starts one)");
    let mut conn = sqlx::PgConnection::connect(&format!("{admin}/postgres")).await.unwrap();
    let mut urls = Vec::new();
    let mut pools = Vec::new();
    for part in ["data", "vault", "control"] {
        let db = format!("chimatic_catalogue_{}_{part}", uuid::Uuid::new_v4().simple());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).await.unwrap();
        let url = format!("{admin}/{db}");
        let backend = match part {
            "data" => crate::PostgresBackend::open_data(&url).await,
            "vault" => crate::PostgresBackend::open_vault(&url).await,
            _ => crate::PostgresBackend::open_control(&url).await,
        };
        pools.push(backend.unwrap().pool);
        urls.push(db);
    }
    let mut failures = Vec::new();
    for sql in catalogue().into_iter().filter(|s| s.dialects != Dialects::SqliteOnly) {
        let mut errors = Vec::new();
        for pool in &pools {
            if let Err(e) = pool.prepare(sqlx::SqlSafeStr::into_sql_str(sql.postgres())).await {
                errors.push(e.to_string());
            }
        }
        if errors.len() == pools.len() {
            failures.push(format!("{}: {}", sql.name, errors.join(" / ")));
        }
    }
    for pool in pools {
        pool.close().await;
    }
    for db in urls {
        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).await.unwrap();
    }
    assert!(failures.is_empty(), "statements that prepare in no PostgreSQL store:\n{}", failures.join("\n"));
}

/// The tables that hold one workspace's rows.
fn tenant_tables() -> Vec<&'static str> {
    let mut tables: Vec<&str> = DATA_TABLES.iter().chain(VAULT_TABLES).chain(CONTROL_TABLES).map(|t| t.0).collect();
    tables.push(DATA_KEY_TABLE.0);
    tables
}

fn names_table(sql: &str, table: &str) -> bool {
    let words: Vec<&str> = sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
    words.windows(2).any(|w| ["FROM", "INTO", "UPDATE", "JOIN"].contains(&w[0]) && w[1] == table)
}

/// Filters by a workspace, or inserts rows that name theirs (an `INSERT … SELECT` must filter too).
fn is_scoped(sql: &str) -> bool {
    let filters = sql.contains("workspace_id = ?") || sql.contains("workspace_id IN (");
    let inserts_own = sql.trim_start().starts_with("INSERT")
        && !sql.contains("SELECT")
        && sql.split(')').next().is_some_and(|columns| columns.contains("workspace_id"));
    filters || inserts_own
}

#[test]
fn statements_on_tenant_tables_filter_by_workspace_or_say_why_not() {
    let tables = tenant_tables();
    let mut failures = Vec::new();
    for sql in catalogue() {
        // Both dialects' texts, in `?N` form.
        let texts: Vec<String> = match sql.dialects {
            Dialects::SqliteOnly => vec![sql.sqlite().to_string()],
            Dialects::PostgresOnly => vec![sql.postgres().replace('$', "?")],
            Dialects::Both => vec![sql.sqlite().to_string(), sql.postgres().replace('$', "?")],
        };
        let unscoped_text = texts.iter().any(|text| tables.iter().any(|t| names_table(text, t)) && !is_scoped(text));
        match (unscoped_text, sql.unscoped) {
            (true, None) => failures.push(format!("{}: no `workspace_id = ?` and no #[unscoped] reason", sql.name)),
            (false, Some(_)) => failures.push(format!("{}: marked #[unscoped] but is scoped: drop the mark", sql.name)),
            (true, Some(why)) if why.trim().is_empty() => {
                failures.push(format!("{}: empty #[unscoped] reason", sql.name))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "tenant guard:\n{}", failures.join("\n"));
}

#[test]
fn the_tenant_guard_reads_statements_as_intended() {
    assert!(names_table("SELECT a FROM workflows WHERE b = ?1", "workflows"));
    assert!(!names_table("SELECT a FROM workflows_old", "workflows"));
    assert!(names_table("DELETE FROM attempts WHERE x IN (SELECT id FROM notifications)", "notifications"));
    assert!(is_scoped("UPDATE t SET a = ?2 WHERE workspace_id = ?1"));
    assert!(!is_scoped("UPDATE t SET a = ?2 WHERE id = ?1"));
    assert!(is_scoped("INSERT INTO t (id, workspace_id) VALUES (?1, ?2)"));
    assert!(!is_scoped("INSERT INTO t (id, name) VALUES (?1, ?2)"));
    assert!(!is_scoped("INSERT INTO t (id, workspace_id) SELECT id, workspace_id FROM u"));
}

/// Every file that declares statements is in the catalogue, so a new aggregate cannot slip
/// past the guards above.
#[test]
fn the_catalogue_holds_every_statement_module() {
    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                && std::fs::read_to_string(&path).unwrap().contains("\nstatements! {")
            {
                found.push(path);
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let names: Vec<&str> = catalogue().iter().map(|s| s.name).collect();
    let mut missing = Vec::new();
    for file in &files {
        let module = file.strip_prefix(&src).unwrap().with_extension("");
        let module = format!("chimatic_store::{}::", module.to_string_lossy().replace('/', "::"));
        if !names.iter().any(|n| n.starts_with(&module)) {
            missing.push(module);
        }
    }
    assert!(files.len() >= 11, "found only {files:?}");
    assert!(missing.is_empty(), "statement modules missing from db::catalogue(): {missing:?}");
}
