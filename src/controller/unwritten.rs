//! Outcomes of ECS calls whose status write failed (the API server down, a timeout). A URL cannot
//! be taken back, so the outcome is kept in memory and written by the session's next reconcile
//! instead of calling ECS again. Bounded: beyond the cap the oldest is dropped (its session then
//! decides afresh, which may cost a second URL, never a lost grant).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::session::decide::Update;

/// Far more sessions than can have had a write fail at once; each outcome is at most a few KiB.
pub const MAX_UNWRITTEN: usize = 1024;

#[derive(Default)]
pub struct Unwritten {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// uid -> outcome.
    outcomes: HashMap<String, Update>,
    /// uids, oldest first.
    order: VecDeque<String>,
}

impl Unwritten {
    /// Keeps `update` for the session `uid`, replacing an older one for it.
    pub fn keep(&self, uid: &str, update: Update) {
        let mut inner = self.lock();
        if inner.outcomes.insert(uid.to_owned(), update).is_none() {
            inner.order.push_back(uid.to_owned());
        }
        while inner.order.len() > MAX_UNWRITTEN {
            if let Some(oldest) = inner.order.pop_front() {
                inner.outcomes.remove(&oldest);
                tracing::warn!("an unwritten outcome was dropped: too many status writes failing");
            }
        }
    }

    /// The outcome kept for `uid`, removed from here (the caller writes it or keeps it again).
    pub fn take(&self, uid: &str) -> Option<Update> {
        let mut inner = self.lock();
        let update = inner.outcomes.remove(uid)?;
        inner.order.retain(|u| u != uid);
        Some(update)
    }

    /// The session is gone: its outcome is not for anyone else.
    pub fn forget(&self, uid: &str) {
        self.take(uid);
    }

    pub fn len(&self) -> usize {
        self.lock().outcomes.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(n: u32) -> Update {
        Update {
            status: crate::session::VncSessionStatus {
                refresh_count: n,
                ..Default::default()
            },
            note: None,
            wake_at: None,
        }
    }

    #[test]
    fn an_outcome_is_taken_once() {
        let kept = Unwritten::default();
        kept.keep("u-1", update(1));
        kept.keep("u-1", update(2));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept.take("u-1").unwrap().status.refresh_count, 2);
        assert!(kept.take("u-1").is_none());
    }

    #[test]
    fn the_oldest_is_dropped_beyond_the_cap() {
        let kept = Unwritten::default();
        for i in 0..(MAX_UNWRITTEN + 5) {
            kept.keep(&format!("u-{i}"), update(0));
        }
        assert_eq!(kept.len(), MAX_UNWRITTEN);
        assert!(kept.take("u-0").is_none());
        assert!(kept.take(&format!("u-{}", MAX_UNWRITTEN + 4)).is_some());
        kept.forget("u-10");
        assert!(kept.take("u-10").is_none());
    }
}
