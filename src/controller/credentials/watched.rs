//! What a metadata-only watch last said about each object a session may reference (a Secret, a
//! ServiceAccount), and values derived from reading or using one version of it. A derived value is
//! handed out only while the watch says the object is still at that version; a change, a deletion
//! or a failing watch drops it.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Resource;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

/// (namespace, name).
type Key = (String, String);

/// `M`: what is kept from each object's metadata; `V`: what was derived from one version of it.
pub struct Watched<M, V> {
    inner: Mutex<Inner<M, V>>,
}

struct Inner<M, V> {
    /// (namespace, name) -> (resourceVersion, kept metadata), as the watch last reported it.
    current: HashMap<Key, (String, M)>,
    /// A re-list in progress: what it has delivered so far.
    relisting: Option<HashMap<Key, (String, M)>>,
    /// (namespace, name) -> (resourceVersion it was derived from, value).
    derived: HashMap<Key, (String, V)>,
}

impl<M, V> Default for Watched<M, V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                current: HashMap::new(),
                relisting: None,
                derived: HashMap::new(),
            }),
        }
    }
}

impl<M: Clone, V: Clone> Watched<M, V> {
    /// Follows the metadata watch; `keep` picks what to remember of each object.
    pub fn observe<K>(
        &self,
        event: &Event<PartialObjectMeta<K>>,
        keep: impl Fn(&PartialObjectMeta<K>) -> M,
    ) where
        K: Resource,
        PartialObjectMeta<K>: Resource,
    {
        let mut inner = self.lock();
        let entry = |object: &PartialObjectMeta<K>| {
            (
                key(&object.namespace().unwrap_or_default(), &object.name_any()),
                (object.resource_version().unwrap_or_default(), keep(object)),
            )
        };
        match event {
            Event::Apply(object) => {
                let (key, seen) = entry(object);
                inner.current.insert(key, seen);
                inner.drop_stale();
            }
            Event::Delete(object) => {
                let (key, _) = entry(object);
                inner.current.remove(&key);
                inner.derived.remove(&key);
            }
            Event::Init => inner.relisting = Some(HashMap::new()),
            Event::InitApply(object) => {
                let (key, seen) = entry(object);
                inner
                    .relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(key, seen);
            }
            Event::InitDone => {
                if let Some(listed) = inner.relisting.take() {
                    inner.current = listed;
                }
                // After a full list, an object it did not name is gone.
                let Inner {
                    current, derived, ..
                } = &mut *inner;
                derived.retain(|key, (version, _)| {
                    current.get(key).is_some_and(|(now, _)| now == version)
                });
            }
        }
    }

    /// The watch failed: until it lists again, nothing says a derived value is still current.
    pub fn watch_failed(&self) {
        self.lock().derived.clear();
    }

    /// The object's resourceVersion and kept metadata as the watch knows them.
    pub fn get(&self, namespace: &str, name: &str) -> Option<(String, M)> {
        self.lock().current.get(&key(namespace, name)).cloned()
    }

    /// The object's resourceVersion as the watch knows it; `None` if the watch has not seen it.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.get(namespace, name).map(|(version, _)| version)
    }

    /// The value derived from the object's current version, if the watch confirms it is current.
    pub fn derived(&self, namespace: &str, name: &str) -> Option<(String, V)> {
        let inner = self.lock();
        let key = key(namespace, name);
        let (current, _) = inner.current.get(&key)?;
        inner
            .derived
            .get(&key)
            .filter(|(version, _)| version == current)
            .cloned()
    }

    /// The value derived from `version` if there is one, else `make()`'s, remembered: one value
    /// per version even when callers race.
    pub fn derived_or_insert(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
        make: impl FnOnce() -> V,
    ) -> V {
        let mut inner = self.lock();
        let key = key(namespace, name);
        if let Some((cached, value)) = inner.derived.get(&key)
            && cached == version
        {
            return value.clone();
        }
        let value = make();
        inner
            .derived
            .insert(key, (version.to_owned(), value.clone()));
        inner.drop_stale();
        value
    }

    /// Remembers what was derived from the object at `version`.
    pub fn remember(&self, namespace: &str, name: &str, version: &str, value: V) {
        let mut inner = self.lock();
        inner
            .derived
            .insert(key(namespace, name), (version.to_owned(), value));
        inner.drop_stale();
    }

    #[cfg(test)]
    pub fn derived_len(&self) -> usize {
        self.lock().derived.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<M, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<M, V> Inner<M, V> {
    /// Keeps derived values only while they match what the watch last said. A version the watch
    /// has not reported yet is kept: the read may simply be ahead of the watch.
    fn drop_stale(&mut self) {
        let current = &self.current;
        self.derived
            .retain(|key, (version, _)| current.get(key).is_none_or(|(now, _)| now == version));
    }
}

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

/// What a metadata watch reports of one object in namespace `team-a`, for the caches' tests.
#[cfg(test)]
pub fn test_meta<K>(
    name: &str,
    version: &str,
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> PartialObjectMeta<K> {
    PartialObjectMeta {
        types: None,
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team-a".into()),
            resource_version: Some(version.into()),
            annotations,
            ..kube::api::ObjectMeta::default()
        },
        _phantom: std::marker::PhantomData,
    }
}
