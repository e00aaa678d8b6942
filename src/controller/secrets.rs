//! What the operator knows of the Secrets sessions reference, without reading them again: each
//! Secret's resourceVersion from the metadata-only watch, and the credentials parsed from the last
//! read of it. A cached key is used only while the watch says the Secret is unchanged; a change or
//! a deletion drops it (and `Credentials` wipes itself on drop).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use crate::aliyun::Credentials;

type Key = (String, String);

#[derive(Default)]
pub struct SecretCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (namespace, name) -> resourceVersion, as the watch last reported it.
    versions: HashMap<Key, String>,
    /// A re-list in progress: the versions it has delivered so far.
    relisting: Option<HashMap<Key, String>>,
    /// (namespace, name) -> (resourceVersion read, credentials parsed from it).
    parsed: HashMap<Key, (String, Credentials)>,
}

impl SecretCache {
    /// Follows the metadata watch of Secrets.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        let mut inner = self.lock();
        match event {
            Event::Apply(secret) => {
                let (key, version) = entry(secret);
                inner.versions.insert(key, version);
                inner.drop_stale();
            }
            Event::Delete(secret) => {
                let (key, _) = entry(secret);
                inner.versions.remove(&key);
                inner.parsed.remove(&key);
            }
            Event::Init => inner.relisting = Some(HashMap::new()),
            Event::InitApply(secret) => {
                let (key, version) = entry(secret);
                inner
                    .relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(key, version);
            }
            Event::InitDone => {
                if let Some(listed) = inner.relisting.take() {
                    inner.versions = listed;
                }
                // After a full list, a Secret it did not name is gone.
                let Inner {
                    versions, parsed, ..
                } = &mut *inner;
                parsed.retain(|key, (version, _)| versions.get(key) == Some(version));
            }
        }
    }

    /// The watch failed: until it lists again, nothing says a cached Secret is still current, so
    /// every Secret is read afresh.
    pub fn watch_failed(&self) {
        self.lock().parsed.clear();
    }

    /// The Secret's resourceVersion as the watch knows it; `None` if the watch has not seen it.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.lock().versions.get(&key(namespace, name)).cloned()
    }

    /// Credentials parsed from this very version of the Secret, if the watch confirms it is current.
    pub fn credentials(&self, namespace: &str, name: &str) -> Option<(String, Credentials)> {
        let inner = self.lock();
        let key = key(namespace, name);
        let current = inner.versions.get(&key)?;
        inner
            .parsed
            .get(&key)
            .filter(|(version, _)| version == current)
            .cloned()
    }

    /// Remembers what a read of the Secret at `version` parsed to.
    pub fn remember(&self, namespace: &str, name: &str, version: &str, credentials: &Credentials) {
        let mut inner = self.lock();
        inner.parsed.insert(
            key(namespace, name),
            (version.to_owned(), credentials.clone()),
        );
        inner.drop_stale();
    }

    #[cfg(test)]
    pub fn parsed_len(&self) -> usize {
        self.lock().parsed.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Keeps parsed credentials only while they match what the watch last said. A version the
    /// watch has not reported yet is kept: the read may simply be ahead of the watch.
    fn drop_stale(&mut self) {
        let versions = &self.versions;
        self.parsed
            .retain(|key, (version, _)| versions.get(key).is_none_or(|current| current == version));
    }
}

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

fn entry(secret: &PartialObjectMeta<Secret>) -> (Key, String) {
    (
        key(&secret.namespace().unwrap_or_default(), &secret.name_any()),
        secret.resource_version().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn meta(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("team-a".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn creds() -> Credentials {
        Credentials::new("id", "secret", None)
    }

    #[test]
    fn parsed_credentials_are_used_only_while_the_watch_says_unchanged() {
        let cache = SecretCache::default();
        cache.observe(&Event::Apply(meta("k", "1")));
        assert_eq!(cache.version("team-a", "k").as_deref(), Some("1"));
        assert!(cache.credentials("team-a", "k").is_none(), "never read");
        cache.remember("team-a", "k", "1", &creds());
        assert_eq!(cache.credentials("team-a", "k").unwrap().0, "1");
        cache.observe(&Event::Apply(meta("k", "2")));
        assert!(cache.credentials("team-a", "k").is_none(), "changed");
        assert_eq!(cache.parsed_len(), 0, "and dropped");
        cache.remember("team-a", "k", "2", &creds());
        cache.observe(&Event::Delete(meta("k", "2")));
        assert!(cache.credentials("team-a", "k").is_none(), "deleted");
        assert_eq!(cache.version("team-a", "k"), None);
        assert_eq!(cache.parsed_len(), 0);
    }

    #[test]
    fn a_failing_watch_drops_the_cached_credentials() {
        let cache = SecretCache::default();
        cache.observe(&Event::Apply(meta("k", "1")));
        cache.remember("team-a", "k", "1", &creds());
        cache.watch_failed();
        assert!(cache.credentials("team-a", "k").is_none());
    }

    #[test]
    fn a_relist_replaces_what_was_known() {
        let cache = SecretCache::default();
        cache.observe(&Event::Apply(meta("gone", "1")));
        cache.remember("team-a", "gone", "1", &creds());
        cache.observe(&Event::Init);
        cache.observe(&Event::InitApply(meta("kept", "5")));
        assert_eq!(
            cache.version("team-a", "gone").as_deref(),
            Some("1"),
            "until done"
        );
        cache.observe(&Event::InitDone);
        assert_eq!(cache.version("team-a", "gone"), None);
        assert_eq!(cache.version("team-a", "kept").as_deref(), Some("5"));
        assert!(cache.credentials("team-a", "gone").is_none());
        assert_eq!(cache.parsed_len(), 0);
    }
}
