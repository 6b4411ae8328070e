//! The two dialects' migrations describe the same schema: each PostgreSQL file equals its SQLite
//! twin once comments and blank lines are dropped and SQLite's types are written PostgreSQL's
//! way. The few lines that differ on purpose are listed, each with its reason.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (file, SQLite line after substitution, PostgreSQL line): differences on purpose.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    // PostgreSQL has a boolean type; SQLite stores 0/1.
    ("data/0001_spine.sql", "succeeded BIGINT NOT NULL,", "succeeded BOOLEAN NOT NULL,"),
    // SQLite's INTEGER PRIMARY KEY is the rowid; the single-row guard is a small integer on both.
    (
        "data/0001_spine.sql",
        "only_row BIGINT PRIMARY KEY CHECK (only_row = 1),",
        "only_row INTEGER PRIMARY KEY CHECK (only_row = 1),",
    ),
    (
        "vault/0001_vault.sql",
        "only_row BIGINT PRIMARY KEY CHECK (only_row = 1),",
        "only_row INTEGER PRIMARY KEY CHECK (only_row = 1),",
    ),
];

fn migrations(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect)
}

fn files(dialect: &str) -> BTreeSet<String> {
    let root = migrations(dialect);
    let mut out = BTreeSet::new();
    for store in std::fs::read_dir(&root).unwrap() {
        let store = store.unwrap();
        for file in std::fs::read_dir(store.path()).unwrap() {
            let name = file.unwrap().file_name().into_string().unwrap();
            out.insert(format!("{}/{name}", store.file_name().into_string().unwrap()));
        }
    }
    out
}

/// Lines without comments, blank lines or repeated spaces.
fn normalised(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

/// SQLite's spelling of a line, written as PostgreSQL spells it.
fn as_postgres(line: &str) -> String {
    let words: Vec<String> = line
        .split(' ')
        .map(|w| {
            let (core, rest) = w.split_at(w.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(w.len()));
            let core = match core {
                "INTEGER" => "BIGINT",
                "BLOB" => "BYTEA",
                other => other,
            };
            format!("{core}{rest}")
        })
        .collect();
    words.join(" ").replace(" WITHOUT ROWID", "")
}

fn differences(sqlite: &str, postgres: &str) -> Vec<(String, String)> {
    let (s, p) = (normalised(sqlite), normalised(postgres));
    let s: Vec<String> = s.iter().map(|l| as_postgres(l)).collect();
    if s.len() != p.len() {
        return vec![(format!("{} lines", s.len()), format!("{} lines", p.len()))];
    }
    s.into_iter().zip(p).filter(|(a, b)| a != b).collect()
}

#[test]
fn both_dialects_have_the_same_migration_files() {
    assert_eq!(files("sqlite"), files("postgres"));
}

#[test]
fn migrations_are_equal_after_the_known_type_substitutions() {
    let mut unexpected = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files("sqlite") {
        let sqlite = std::fs::read_to_string(migrations("sqlite").join(&file)).unwrap();
        let postgres = std::fs::read_to_string(migrations("postgres").join(&file)).unwrap();
        for (s, p) in differences(&sqlite, &postgres) {
            let known = KNOWN_DIFFERENCES.iter().position(|k| k.0 == file && k.1 == s && k.2 == p);
            match known {
                Some(i) => {
                    seen.insert(i);
                }
                None => unexpected.push(format!("{file}:\n  sqlite:   {s}\n  postgres: {p}")),
            }
        }
    }
    assert!(unexpected.is_empty(), "migrations differ between dialects:\n{}", unexpected.join("\n"));
    let stale: Vec<_> =
        (0..KNOWN_DIFFERENCES.len()).filter(|i| !seen.contains(i)).map(|i| KNOWN_DIFFERENCES[i]).collect();
    assert!(stale.is_empty(), "listed differences that no longer exist: {stale:?}");
}

#[test]
fn the_comparison_sees_a_one_sided_change() {
    let sqlite =
        "CREATE TABLE t (\n  id TEXT PRIMARY KEY, -- the id\n  n INTEGER NOT NULL,\n  b BLOB\n) WITHOUT ROWID;";
    assert!(
        differences(sqlite, "CREATE TABLE t (\n id TEXT PRIMARY KEY,\n n BIGINT NOT NULL,\n b BYTEA\n);").is_empty()
    );
    assert_eq!(differences(sqlite, "CREATE TABLE t (\n id TEXT PRIMARY KEY,\n n BIGINT,\n b BYTEA\n);").len(), 1);
}
