//! Publishing Events with a compact series cache.
//!
//! kube's `Recorder` keeps a full copy of every Event it published (the Event object and a key
//! holding the whole `ObjectReference`) for six minutes, and sweeps that cache on every publish
//! while holding its lock. At 10,000 new sessions that was about 40,000 cached Events, most of
//! the operator's peak memory, and an O(n) sweep per Event (measured in BENCHMARKS.md); with no
//! Event published at rest, the cache was never swept either. This keeps what a series needs:
//! a 64-bit hash of kube's key, the Event's name and body fields for the series patch, and the
//! time, in insertion order so expired entries leave from the front.
//!
//! The behaviour is kube's: an Event repeated within six minutes with the same type, action,
//! reason, reporter and `regarding` object (including its resourceVersion, as kube compares it)
//! becomes a merge patch of `series` on the first Event; anything else is a new Event named
//! `<object>.<nanoseconds in hex>`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, Mutex};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};

use crate::controller::manager::MANAGER;

/// As kube's `Recorder`.
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);

/// The reporting controller and instance: the field manager and the pod's name, as in kube's
/// `Reporter` built by the context.
struct Reporter {
    controller: &'static str,
    instance: String,
}

static REPORTER: LazyLock<Reporter> = LazyLock::new(|| Reporter {
    controller: MANAGER,
    instance: std::env::var("POD_NAME").unwrap_or_else(|_| MANAGER.to_owned()),
});

/// What a repeat needs: the first Event's name and namespace, how often it was seen, when last.
struct Seen {
    name: String,
    count: i32,
    last: Timestamp,
}

#[derive(Default)]
struct Series {
    by_key: HashMap<u64, Seen>,
    /// (time of first publication, key), oldest first: entries expire from the front.
    order: VecDeque<(Timestamp, u64)>,
}

impl Series {
    /// Drops entries not repeated within the TTL.
    fn expire(&mut self, now: Timestamp) {
        while let Some(&(at, key)) = self.order.front() {
            if at + SERIES_TTL > now {
                break;
            }
            self.order.pop_front();
            let stale = self
                .by_key
                .get(&key)
                .is_some_and(|seen| seen.last + SERIES_TTL <= now);
            if stale {
                self.by_key.remove(&key);
            } else if let Some(seen) = self.by_key.get(&key) {
                // Repeated since: it stays, queued again by its last sighting.
                self.order.push_back((seen.last, key));
            }
        }
    }

    /// Records a publication; returns the series to patch onto (name, count) if it is a repeat.
    fn observe(&mut self, key: u64, now: Timestamp, new_name: &str) -> Option<(String, i32)> {
        self.expire(now);
        match self.by_key.get_mut(&key) {
            Some(seen) => {
                seen.count += 1;
                seen.last = now;
                Some((seen.name.clone(), seen.count))
            }
            None => {
                self.by_key.insert(
                    key,
                    Seen {
                        name: new_name.to_owned(),
                        count: 1,
                        last: now,
                    },
                );
                self.order.push_back((now, key));
                None
            }
        }
    }

    /// Forgets a series whose write failed, so the next one starts afresh.
    fn forget(&mut self, key: u64) {
        self.by_key.remove(&key);
    }
}

/// The Events published lately, for series; one per context (a term of service), as kube's
/// `Recorder` was.
#[derive(Default)]
pub struct SeriesCache(Mutex<Series>);

impl SeriesCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Series> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// kube's key, hashed: type, action, reason, reporter, the whole `regarding` reference.
fn key(ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    matches!(ev.type_, EventType::Warning).hash(&mut h);
    ev.action.hash(&mut h);
    ev.reason.hash(&mut h);
    REPORTER.controller.hash(&mut h);
    REPORTER.instance.hash(&mut h);
    for part in [
        &regarding.api_version,
        &regarding.kind,
        &regarding.name,
        &regarding.namespace,
        &regarding.uid,
        &regarding.resource_version,
        &regarding.field_path,
    ] {
        part.hash(&mut h);
    }
    h.finish()
}

fn event_body(ev: &Event, regarding: &ObjectReference, name: String, now: Timestamp) -> K8sEvent {
    K8sEvent {
        action: Some(ev.action.clone()),
        reason: Some(ev.reason.clone()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        note: ev.note.clone(),
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(name),
            ..ObjectMeta::default()
        },
        reporting_controller: Some(REPORTER.controller.to_owned()),
        reporting_instance: Some(REPORTER.instance.clone()),
        type_: Some(
            match ev.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        related: ev.secondary.clone(),
        ..K8sEvent::default()
    }
}

/// Creates the Event, or patches the series of the one it repeats.
pub async fn publish(
    client: &kube::Client,
    cache: &SeriesCache,
    ev: &Event,
    regarding: &ObjectReference,
) -> Result<(), kube::Error> {
    let now = Timestamp::now();
    let namespace = regarding.namespace.as_deref().unwrap_or("default");
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), namespace);
    let key = key(ev, regarding);
    let fresh_name = format!(
        "{}.{:x}",
        regarding.name.as_deref().unwrap_or(REPORTER.controller),
        now.as_nanosecond()
    );
    let repeat = cache.lock().observe(key, now, &fresh_name);
    let result = match repeat {
        Some((name, count)) => {
            let mut event = event_body(ev, regarding, name.clone(), now);
            event.series = Some(EventSeries {
                count,
                last_observed_time: MicroTime(now),
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&event))
                .await
                .map(drop)
        }
        None => api
            .create(
                &PostParams::default(),
                &event_body(ev, regarding, fresh_name, now),
            )
            .await
            .map(drop),
    };
    if result.is_err() {
        cache.lock().forget(key);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_ttl_is_a_series_and_entries_expire_in_order() {
        let t0 = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(1000);
        let mut s = Series::default();
        assert_eq!(s.observe(1, t0, "a.1"), None);
        assert_eq!(s.observe(2, t0, "b.1"), None);
        let t1 = t0 + SignedDuration::from_mins(5);
        assert_eq!(s.observe(1, t1, "a.2"), Some(("a.1".to_owned(), 2)));
        // Six minutes after the first sighting: 2 goes, 1 was repeated at t1 and stays.
        let t2 = t0 + SERIES_TTL;
        s.expire(t2);
        assert!(!s.by_key.contains_key(&2));
        assert_eq!(s.observe(1, t2, "a.3"), Some(("a.1".to_owned(), 3)));
        // Six minutes of silence after that: gone, the next one starts a new Event.
        let t3 = t2 + SERIES_TTL;
        assert_eq!(s.observe(1, t3, "a.4"), None);
        assert_eq!(s.by_key.len(), 1);
        s.forget(1);
        assert!(s.by_key.is_empty());
    }

    #[test]
    fn the_key_tells_resource_versions_apart_as_kube_does() {
        let ev = Event {
            type_: EventType::Normal,
            reason: "UrlIssued".into(),
            note: None,
            action: "Issue".into(),
            secondary: None,
        };
        let mut r = ObjectReference {
            name: Some("web-1".into()),
            namespace: Some("team-a".into()),
            uid: Some("u".into()),
            resource_version: Some("1".into()),
            ..ObjectReference::default()
        };
        let k1 = key(&ev, &r);
        assert_eq!(k1, key(&ev, &r.clone()));
        r.resource_version = Some("2".into());
        assert_ne!(k1, key(&ev, &r));
    }
}
