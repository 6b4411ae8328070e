//! A per-node cache of decrypted values, bounded in size and in time: an entry is dropped after
//! its TTL, and when the map is full the expired entries go first, then everything. Values are
//! shared (`Arc`), so a secret is zeroized when the last user drops it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chimatic_domain::Timestamp;

pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    max: usize,
    entries: RwLock<HashMap<K, (Arc<V>, Timestamp)>>,
}

impl<K: Hash + Eq, V> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        Self { ttl, max, entries: RwLock::default() }
    }

    pub(crate) fn get(&self, key: &K, now: Timestamp) -> Option<Arc<V>> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(key).filter(|(_, until)| *until > now).map(|(v, _)| v.clone())
    }

    pub(crate) fn insert(&self, key: K, value: Arc<V>, now: Timestamp) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.max {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (value, now.plus(self.ttl)));
    }

    /// Drops every entry whose key matches.
    pub(crate) fn forget(&self, matches: impl Fn(&K) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|k, _| !matches(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_are_bounded_and_can_be_forgotten() {
        let cache = TtlCache::new(Duration::from_secs(10), 2);
        let t0 = Timestamp(1_000_000);
        cache.insert(1, Arc::new("a"), t0);
        assert_eq!(cache.get(&1, t0.plus(Duration::from_secs(9))).as_deref(), Some(&"a"));
        assert!(cache.get(&1, t0.plus(Duration::from_secs(10))).is_none(), "expired at its TTL");

        cache.insert(2, Arc::new("b"), t0);
        let later = t0.plus(Duration::from_secs(20));
        cache.insert(3, Arc::new("c"), later);
        assert!(cache.get(&3, later).is_some());
        assert_eq!(cache.entries.read().unwrap().len(), 1, "a full map drops its expired entries first");
        cache.insert(4, Arc::new("d"), later);
        cache.insert(5, Arc::new("e"), later);
        assert!(cache.entries.read().unwrap().len() <= 2, "never beyond its bound");

        cache.forget(|k| *k == 5);
        assert!(cache.get(&5, later).is_none());
    }
}
