//! The fair-claim walk shared by every backend: visit workspaces that have queued work in id
//! order, starting after the one served last and wrapping round, so that over successive claims
//! every tenant gets its turn. Backends supply one query — "the smallest workspace id with
//! queued work greater than X" — and this decides what to ask next.

/// Workspaces visited per claim; more than this take turns across claims.
pub(crate) const FAIR_CLAIM_WORKSPACES: usize = 64;

pub(crate) struct WorkspaceWalk<'a> {
    cursor: &'a str,
    at: String,
    wrapped: bool,
    done: bool,
    pub found: Vec<String>,
}

impl<'a> WorkspaceWalk<'a> {
    pub(crate) fn after(cursor: &'a str) -> Self {
        Self { cursor, at: cursor.to_string(), wrapped: cursor.is_empty(), done: false, found: Vec::new() }
    }

    /// The id to ask "the next workspace after" for, or `None` when the walk is complete.
    pub(crate) fn next_query(&self) -> Option<&str> {
        (!self.done && self.found.len() < FAIR_CLAIM_WORKSPACES).then_some(self.at.as_str())
    }

    /// Feeds the answer to the last query.
    pub(crate) fn answer(&mut self, next: Option<String>) {
        match next {
            // Past the cursor again after wrapping: every workspace has been seen once.
            Some(ws) if self.wrapped && !self.cursor.is_empty() && ws.as_str() > self.cursor => self.done = true,
            Some(ws) => {
                self.at.clone_from(&ws);
                self.found.push(ws);
            }
            None if self.wrapped => self.done = true,
            None => {
                self.wrapped = true;
                self.at.clear();
            }
        }
    }

    /// Each workspace's share of a claim of `limit` jobs (at least one).
    pub(crate) fn share(&self, limit: usize) -> i64 {
        i64::try_from((limit / self.found.len().max(1)).max(1)).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(all: &[&str], cursor: &str) -> Vec<String> {
        let mut w = WorkspaceWalk::after(cursor);
        while let Some(at) = w.next_query() {
            let next = all.iter().filter(|ws| **ws > at).min().map(|s| s.to_string());
            w.answer(next);
        }
        w.found
    }

    #[test]
    fn walks_every_workspace_once_starting_after_the_cursor() {
        let all = ["a", "b", "c", "d"];
        assert_eq!(walk(&all, ""), ["a", "b", "c", "d"]);
        assert_eq!(walk(&all, "b"), ["c", "d", "a", "b"]);
        assert_eq!(walk(&all, "d"), ["a", "b", "c", "d"]);
        assert_eq!(walk(&all, "bb"), ["c", "d", "a", "b"], "a cursor that no longer has work");
        assert_eq!(walk(&[], "x"), Vec::<String>::new());
    }

    #[test]
    fn stops_at_the_per_claim_bound() {
        let names: Vec<String> = (0..200).map(|i| format!("ws{i:03}")).collect();
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let got = walk(&all, "ws150");
        assert_eq!(got.len(), FAIR_CLAIM_WORKSPACES);
        assert_eq!(got[0], "ws151");
        assert_eq!(got[49], "ws000", "wraps round after the last");
    }
}
