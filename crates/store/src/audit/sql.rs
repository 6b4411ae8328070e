//! The audit tables' statements, written for the data store's tables; the control store's are
//! the same with a `control_` prefix (see [`of`]), so a control store sharing a PostgreSQL
//! database with a region's data keeps its own chains.

use std::sync::LazyLock;

use chimatic_audit::Stream;

use crate::db::Sql;
use crate::db::sql::statements;

statements! {
    // Appending. SQLite's single writer serialises chains; PostgreSQL creates the chain row if
    // missing and locks it (in workspace order, so two nodes never deadlock on them).
    TIP = sqlite "SELECT next_seq, head_hash FROM audit_chains WHERE workspace_id = ?1";
    CREATE_CHAIN = postgres "INSERT INTO audit_chains (workspace_id, next_seq, head_hash, anchor_seq, anchor_hash, \
                             signed_seq) VALUES (?1, 1, ?2, 0, ?2, 0) ON CONFLICT DO NOTHING";
    LOCK_TIP = postgres "SELECT next_seq, head_hash FROM audit_chains WHERE workspace_id = ?1 FOR UPDATE";
    // Every entry of an append in one round trip: INSERT_ENTRY's parameters as arrays.
    #[unscoped = "a multi-row insert: every row carries its own workspace_id"]
    INSERT_ENTRIES = postgres "INSERT INTO audit_log (workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, \
                               user_agent, action, target_kind, target_id, outcome, detail, prev_hash, hash) \
                               SELECT * FROM UNNEST(?1::text[], ?2::bigint[], ?3::bigint[], ?4::text[], ?5::text[], \
                               ?6::text[], ?7::text[], ?8::text[], ?9::text[], ?10::text[], ?11::text[], ?12::text[], \
                               ?13::text[], ?14::bytea[], ?15::bytea[])";
    INSERT_ENTRY = "INSERT INTO audit_log (workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, \
                    action, target_kind, target_id, outcome, detail, prev_hash, hash) \
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
    MOVE_TIP = sqlite "INSERT INTO audit_chains (workspace_id, next_seq, head_hash, anchor_seq, anchor_hash, signed_seq) \
                       VALUES (?1, ?2, ?3, 0, ?4, 0) ON CONFLICT (workspace_id) DO UPDATE \
                       SET next_seq = excluded.next_seq, head_hash = excluded.head_hash",
               postgres "UPDATE audit_chains SET next_seq = ?2, head_hash = ?3 WHERE workspace_id = ?1";

    PAGE = "SELECT workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, target_kind, \
            target_id, outcome, detail, prev_hash, hash FROM audit_log WHERE workspace_id = ?1 \
            AND (at < ?2 OR (at = ?2 AND seq < ?3)) AND at >= ?4 AND at < ?5 \
            AND (CAST(?6 AS TEXT) IS NULL OR action = ?6) AND (CAST(?7 AS TEXT) IS NULL OR actor_id = ?7) \
            ORDER BY at DESC, seq DESC LIMIT ?8";
    ENTRIES_AFTER = "SELECT workspace_id, seq, at, actor_kind, actor_id, actor_name, ip, user_agent, action, \
                     target_kind, target_id, outcome, detail, prev_hash, hash FROM audit_log \
                     WHERE workspace_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
    CHAIN = "SELECT next_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains WHERE workspace_id = ?1";
    LOCK_CHAIN = postgres "SELECT next_seq, head_hash, anchor_seq, anchor_hash FROM audit_chains \
                           WHERE workspace_id = ?1 FOR UPDATE";
    HEADS = "SELECT workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, signature \
             FROM audit_heads WHERE workspace_id = ?1 ORDER BY seq, signed_at";
    #[unscoped = "verification and signing walk every chain of the store"]
    CHAINS = "SELECT workspace_id FROM audit_chains ORDER BY workspace_id";

    // Signing. PostgreSQL skips chains being appended to right now; they are signed next time.
    #[unscoped = "the signing job finds chains of every workspace that grew"]
    UNSIGNED = sqlite "SELECT workspace_id FROM audit_chains WHERE signed_seq < next_seq - 1 LIMIT ?1",
               postgres "SELECT workspace_id FROM audit_chains WHERE signed_seq < next_seq - 1 \
                         ORDER BY workspace_id LIMIT ?1 FOR UPDATE SKIP LOCKED";
    INSERT_HEAD = "INSERT INTO audit_heads (workspace_id, seq, signed_at, anchor_seq, anchor_hash, hash, public_key, \
                   signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                   ON CONFLICT (workspace_id, seq, signed_at) DO UPDATE SET anchor_seq = excluded.anchor_seq, \
                   anchor_hash = excluded.anchor_hash, hash = excluded.hash, public_key = excluded.public_key, \
                   signature = excluded.signature";
    MARK_SIGNED = "UPDATE audit_chains SET signed_seq = ?2 WHERE workspace_id = ?1";

    // Retention: only a prefix goes, up to the first entry still within retention.
    OLDEST = "SELECT seq, at, hash FROM audit_log WHERE workspace_id = ?1 ORDER BY seq LIMIT ?2";
    PRUNE_ENTRIES = "DELETE FROM audit_log WHERE workspace_id = ?1 AND seq <= ?2";
    PRUNE_HEADS = "DELETE FROM audit_heads WHERE workspace_id = ?1 AND seq <= ?2";
    MOVE_ANCHOR = "UPDATE audit_chains SET anchor_seq = ?2, anchor_hash = ?3 WHERE workspace_id = ?1";
}

/// One stream's statements.
pub(crate) struct AuditSql {
    pub tip: &'static Sql,
    pub create_chain: &'static Sql,
    pub lock_tip: &'static Sql,
    pub insert_entry: &'static Sql,
    pub insert_entries: &'static Sql,
    pub move_tip: &'static Sql,
    pub page: &'static Sql,
    pub entries_after: &'static Sql,
    pub chain: &'static Sql,
    pub lock_chain: &'static Sql,
    pub heads: &'static Sql,
    pub chains: &'static Sql,
    pub unsigned: &'static Sql,
    pub insert_head: &'static Sql,
    pub mark_signed: &'static Sql,
    pub oldest: &'static Sql,
    pub prune_entries: &'static Sql,
    pub prune_heads: &'static Sql,
    pub move_anchor: &'static Sql,
}

impl AuditSql {
    fn map(&self, f: impl Fn(&'static Sql) -> &'static Sql) -> AuditSql {
        AuditSql {
            tip: f(self.tip),
            create_chain: f(self.create_chain),
            lock_tip: f(self.lock_tip),
            insert_entry: f(self.insert_entry),
            insert_entries: f(self.insert_entries),
            move_tip: f(self.move_tip),
            page: f(self.page),
            entries_after: f(self.entries_after),
            chain: f(self.chain),
            lock_chain: f(self.lock_chain),
            heads: f(self.heads),
            chains: f(self.chains),
            unsigned: f(self.unsigned),
            insert_head: f(self.insert_head),
            mark_signed: f(self.mark_signed),
            oldest: f(self.oldest),
            prune_entries: f(self.prune_entries),
            prune_heads: f(self.prune_heads),
            move_anchor: f(self.move_anchor),
        }
    }

    #[cfg(test)]
    fn all(&self) -> Vec<&'static Sql> {
        vec![
            self.tip,
            self.create_chain,
            self.lock_tip,
            self.insert_entry,
            self.insert_entries,
            self.move_tip,
            self.page,
            self.entries_after,
            self.chain,
            self.lock_chain,
            self.heads,
            self.chains,
            self.unsigned,
            self.insert_head,
            self.mark_signed,
            self.oldest,
            self.prune_entries,
            self.prune_heads,
            self.move_anchor,
        ]
    }
}

static DATA: AuditSql = AuditSql {
    tip: &TIP,
    create_chain: &CREATE_CHAIN,
    lock_tip: &LOCK_TIP,
    insert_entry: &INSERT_ENTRY,
    insert_entries: &INSERT_ENTRIES,
    move_tip: &MOVE_TIP,
    page: &PAGE,
    entries_after: &ENTRIES_AFTER,
    chain: &CHAIN,
    lock_chain: &LOCK_CHAIN,
    heads: &HEADS,
    chains: &CHAINS,
    unsigned: &UNSIGNED,
    insert_head: &INSERT_HEAD,
    mark_signed: &MARK_SIGNED,
    oldest: &OLDEST,
    prune_entries: &PRUNE_ENTRIES,
    prune_heads: &PRUNE_HEADS,
    move_anchor: &MOVE_ANCHOR,
};

static CONTROL: LazyLock<AuditSql> = LazyLock::new(|| DATA.map(|s| s.renamed("audit_", "control_audit_")));

/// The statements of `stream`'s tables.
pub(crate) fn of(stream: Stream) -> &'static AuditSql {
    match stream {
        Stream::Data => &DATA,
        Stream::Control => &CONTROL,
    }
}

/// Both streams' statements, for the drift tests.
#[cfg(test)]
pub(crate) fn catalogue() -> Vec<&'static Sql> {
    [DATA.all(), CONTROL.all()].concat()
}
