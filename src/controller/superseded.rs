//! Which cached versions of a session this process has already written over. The watch cache
//! lags behind the operator's own writes; a decision taken on a copy that predates them could call
//! ECS a second time for a request already served. Instead of reading the session again before
//! every ECS call, the controller remembers the resourceVersions its writes replaced and waits for
//! the watch to deliver the newer one.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Superseded {
    /// uid -> resourceVersions the last reconcile's writes were based on (or read and replaced).
    by_uid: Mutex<HashMap<String, Vec<String>>>,
}

impl Superseded {
    /// Whether `version` of the session is older than something this process wrote.
    pub fn is_stale(&self, uid: &str, version: &str) -> bool {
        self.lock()
            .get(uid)
            .is_some_and(|old| old.iter().any(|v| v == version))
    }

    /// Records that the versions in `replaced` are out of date: a write based on (or after reading)
    /// each of them has succeeded. Replaces what the previous reconcile recorded: the watch
    /// delivers versions in order, so those can no longer arrive.
    pub fn record(&self, uid: &str, replaced: Vec<String>) {
        if replaced.is_empty() {
            return;
        }
        self.lock().insert(uid.to_owned(), replaced);
    }

    pub fn forget(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// Keeps only the sessions `live` still knows (after a re-list, deletions are not seen).
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.lock().retain(|uid, _| live(uid));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.by_uid.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_written_over_are_stale_until_the_next_reconcile_records_its_own() {
        let s = Superseded::default();
        assert!(!s.is_stale("u", "10"));
        s.record("u", vec!["10".into(), "11".into()]);
        assert!(s.is_stale("u", "10") && s.is_stale("u", "11"));
        assert!(!s.is_stale("u", "12") && !s.is_stale("other", "10"));
        s.record("u", vec![]);
        assert!(s.is_stale("u", "10"), "an empty record keeps the old one");
        s.record("u", vec!["12".into()]);
        assert!(!s.is_stale("u", "10") && s.is_stale("u", "12"));
        s.forget("u");
        assert_eq!(s.len(), 0);
        s.record("a", vec!["1".into()]);
        s.record("b", vec!["1".into()]);
        s.retain(|uid| uid == "a");
        assert_eq!(s.len(), 1);
    }
}
