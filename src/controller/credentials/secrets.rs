//! Credentials from a Secret in the session's namespace (`spec.credentialsRef`), read only when
//! the metadata-only watch says it changed: each Secret's resourceVersion from the watch, and the
//! credentials parsed from the last read of it. A cached key is used only while the watch says the
//! Secret is unchanged; a change or a deletion drops it (and `Credentials` wipes itself on drop).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use super::found::Found;
use super::watched::Watched;
use crate::aliyun::Credentials;
use crate::session::validate;

/// Secret versions, and the credentials parsed from one version of each.
#[derive(Default)]
pub struct SecretCache {
    watched: Watched<(), Credentials>,
}

impl SecretCache {
    /// Follows the metadata watch of Secrets.
    pub fn observe(&self, event: &Event<PartialObjectMeta<Secret>>) {
        self.watched.observe(event, |_| ());
    }

    /// The watch failed: until it lists again, nothing says a cached Secret is still current, so
    /// every Secret is read afresh.
    pub fn watch_failed(&self) {
        self.watched.watch_failed();
    }

    /// The Secret's resourceVersion as the watch knows it; `None` if the watch has not seen it.
    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.watched.version(namespace, name)
    }

    /// Credentials parsed from this very version of the Secret, if the watch confirms it is current.
    pub fn credentials(&self, namespace: &str, name: &str) -> Option<(String, Credentials)> {
        self.watched.derived(namespace, name)
    }

    /// Remembers what a read of the Secret at `version` parsed to.
    pub fn remember(&self, namespace: &str, name: &str, version: &str, credentials: &Credentials) {
        self.watched
            .remember(namespace, name, version, credentials.clone());
    }

    #[cfg(test)]
    pub fn parsed_len(&self) -> usize {
        self.watched.derived_len()
    }
}

/// Reads the credentials in Secret `name` of `namespace` (the session's own), unless the watch
/// says the copy parsed last is current. Also returns the Secret's resourceVersion, so a failure
/// can wait for it to change. A name that is not a plain object name is refused before any call.
pub async fn credentials(
    client: &kube::Client,
    cache: &SecretCache,
    namespace: &str,
    name: &str,
) -> Result<(Found, Option<String>), kube::Error> {
    if !validate::dns1123_subdomain(name) {
        return Ok((
            Found::Missing(format!(
                "spec.credentialsRef.name {name:?} is not a Secret name in this namespace"
            )),
            None,
        ));
    }
    // Unchanged since it was last read (the metadata watch says so): no read at all.
    if let Some((version, credentials)) = cache.credentials(namespace, name) {
        return Ok((Found::Credentials(credentials), Some(version)));
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(secret) = secrets.get_opt(name).await? else {
        return Ok((
            Found::Missing(format!(
                "Secret {namespace}/{name} not found; create it with keys accessKeyId and accessKeySecret"
            )),
            None,
        ));
    };
    let version = secret.metadata.resource_version.clone();
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let found = match Credentials::from_secret_data(&data) {
        Ok(c) => {
            if let Some(version) = &version {
                cache.remember(namespace, name, version, &c);
            }
            Found::Credentials(c)
        }
        Err(e) => Found::Missing(format!("Secret {namespace}/{name}: {e}")),
    };
    Ok((found, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        super::super::watched::test_meta(name, version, None)
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
