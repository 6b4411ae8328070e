//! Statements written once. The canonical text uses SQLite's numbered `?N` parameters; the
//! PostgreSQL text (`$N`) is derived from it once per process into a `&'static str`, so both
//! drivers keep caching their prepared statements exactly as with string literals.
//!
//! Never the other way round: SQLite numbers `$NAME` parameters by order of first appearance,
//! so `$2, $1` would bind in the wrong order there.

use std::sync::OnceLock;

/// Which dialects a statement is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialects {
    Both,
    SqliteOnly,
    PostgresOnly,
}

/// One statement of the catalogue.
pub struct Sql {
    /// `module::NAME`, for the drift tests' reports.
    pub name: &'static str,
    sqlite: &'static str,
    /// The PostgreSQL text before `?N` → `$N`.
    postgres_source: &'static str,
    postgres: OnceLock<String>,
    pub dialects: Dialects,
    /// Why a statement on a tenant table may omit `workspace_id = ?` (discovery and maintenance
    /// queries); `None` for every other statement. The tenant-guard test reads it.
    pub unscoped: Option<&'static str>,
}

impl Sql {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        sqlite: &'static str,
        postgres_source: &'static str,
        dialects: Dialects,
        unscoped: Option<&'static str>,
    ) -> Self {
        Self { name, sqlite, postgres_source, postgres: OnceLock::new(), dialects, unscoped }
    }

    /// This statement with a table-name prefix replaced, made once and kept for the process
    /// (the control store's audit tables are the data store's with a `control_` prefix).
    pub fn renamed(&'static self, from: &str, to: &str) -> &'static Sql {
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        Box::leak(Box::new(Sql::new(
            leak(format!("{} ({to})", self.name)),
            leak(self.sqlite.replace(from, to)),
            leak(self.postgres_source.replace(from, to)),
            self.dialects,
            self.unscoped,
        )))
    }

    pub fn sqlite(&'static self) -> &'static str {
        debug_assert!(self.dialects != Dialects::PostgresOnly, "{} is PostgreSQL only", self.name);
        self.sqlite
    }

    pub fn postgres(&'static self) -> &'static str {
        debug_assert!(self.dialects != Dialects::SqliteOnly, "{} is SQLite only", self.name);
        self.postgres.get_or_init(|| to_postgres(self.postgres_source))
    }
}

/// `?N` → `$N` outside quoted literals and identifiers.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// Declares a module's statements and its `ALL` list (the catalogue the drift tests walk):
///
/// ```ignore
/// statements! {
///     CHANNEL = "SELECT … WHERE workspace_id = ?1 AND id = ?2";
///     // Each variant carries a one-line reason next to it.
///     CLAIM = sqlite "…", postgres "… FOR UPDATE SKIP LOCKED";
///     LOCK = postgres "SELECT pg_try_advisory_xact_lock(hashtext(?1))";
///     #[unscoped = "discovery: the digest names the workspace"]
///     BY_DIGEST = "SELECT … WHERE digest = ?1";
/// }
/// ```
macro_rules! statements {
    ($($(#[unscoped = $why:literal])? $name:ident = $($dialect:ident)? $text:literal $(, postgres $pg:expr)?;)*) => {
        $(
            pub(crate) static $name: $crate::db::sql::Sql = $crate::db::sql::Sql::new(
                concat!(module_path!(), "::", stringify!($name)),
                $text,
                statements!(@pg $text $(, $pg)?),
                statements!(@dialects $($dialect)? $(, $pg)?),
                statements!(@why $($why)?),
            );
        )*
        #[allow(dead_code)]
        pub(crate) static ALL: &[&$crate::db::sql::Sql] = &[$(&$name),*];
    };
    (@pg $text:literal) => { $text };
    (@pg $text:literal, $pg:expr) => { $pg };
    (@dialects) => { $crate::db::sql::Dialects::Both };
    (@dialects sqlite, $pg:expr) => { $crate::db::sql::Dialects::Both };
    (@dialects sqlite) => { $crate::db::sql::Dialects::SqliteOnly };
    (@dialects postgres) => { $crate::db::sql::Dialects::PostgresOnly };
    (@why) => { None };
    (@why $why:literal) => { Some($why) };
}
pub(crate) use statements;

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn numbered_parameters_are_rewritten_outside_literals() {
        assert_eq!(
            to_postgres("SELECT ?1, ?12 WHERE a = '?3' AND \"?4\" = ?2"),
            "SELECT $1, $12 WHERE a = '?3' AND \"?4\" = $2"
        );
        assert_eq!(to_postgres("SELECT 'it''s ?1', ?1"), "SELECT 'it''s ?1', $1");
    }
}
