//! What the operator knows of the ServiceAccounts sessions name in `spec.serviceAccountRef`, from a
//! metadata-only watch: each one's resourceVersion and its `ecsvnc.dev/role-arn` annotation, and
//! the STS credentials exchanged for it, kept while the ServiceAccount is unchanged.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;

use super::found::Failure;
use super::watched::Watched;
use crate::aliyun::Renewing;
use crate::aliyun::sts::check_role_arn;

/// The annotation that names the RAM role a ServiceAccount's token is exchanged for.
pub const ROLE_ARN_ANNOTATION: &str = "ecsvnc.dev/role-arn";

/// Longer than any role ARN (`acs:ram::` + a 32-digit account + `:role/` + 128 characters): a
/// longer annotation is kept as an empty value, which the role check refuses, not as written.
pub const ROLE_ARN_MAX_BYTES: usize = 256;

/// STS credentials exchanged for one version of a ServiceAccount, renewed before they expire.
pub type Cell = Renewing<Failure>;

/// ServiceAccount versions and role annotations, and one renewing STS cell per version.
#[derive(Default)]
pub struct ServiceAccountCache {
    watched: Watched<Option<String>, Arc<Cell>>,
}

impl ServiceAccountCache {
    /// Follows the metadata watch of ServiceAccounts.
    pub fn observe(&self, event: &Event<PartialObjectMeta<ServiceAccount>>) {
        self.watched.observe(event, |sa| {
            let role = sa.annotations().get(ROLE_ARN_ANNOTATION)?;
            Some(if role.len() <= ROLE_ARN_MAX_BYTES {
                role.clone()
            } else {
                String::new()
            })
        });
    }

    /// The watch failed: credentials exchanged so far are dropped, to be exchanged again.
    pub fn watch_failed(&self) {
        self.watched.watch_failed();
    }

    /// `(resourceVersion, role-arn annotation)` as the watch last saw them.
    pub fn get(&self, namespace: &str, name: &str) -> Option<(String, Option<String>)> {
        self.watched.get(namespace, name)
    }

    pub fn version(&self, namespace: &str, name: &str) -> Option<String> {
        self.watched.version(namespace, name)
    }

    /// The STS cell for this ServiceAccount at `version`: the cached one while the watch says the
    /// ServiceAccount is unchanged, else a fresh, empty one.
    pub fn cell(&self, namespace: &str, name: &str, version: &str) -> Arc<Cell> {
        self.watched
            .derived_or_insert(namespace, name, version, || Arc::new(Cell::new()))
    }

    #[cfg(test)]
    pub fn cells(&self) -> usize {
        self.watched.derived_len()
    }
}

/// The role a ServiceAccount's annotation names, checked before it is sent anywhere.
pub fn role_arn(value: &str) -> Result<&str, String> {
    let value = value.trim();
    check_role_arn(value).map(|()| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, version: &str, role: Option<&str>) -> PartialObjectMeta<ServiceAccount> {
        let annotations = role.map(|r| [(ROLE_ARN_ANNOTATION.to_owned(), r.to_owned())].into());
        super::super::watched::test_meta(name, version, annotations)
    }

    #[test]
    fn the_annotation_and_version_come_from_the_watch() {
        let cache = ServiceAccountCache::default();
        assert_eq!(cache.get("team-a", "opener"), None);
        cache.observe(&Event::Apply(meta(
            "opener",
            "7",
            Some("acs:ram::1:role/a"),
        )));
        assert_eq!(
            cache.get("team-a", "opener"),
            Some(("7".to_owned(), Some("acs:ram::1:role/a".to_owned())))
        );
        cache.observe(&Event::Apply(meta("bare", "8", None)));
        assert_eq!(cache.get("team-a", "bare"), Some(("8".to_owned(), None)));
        assert_eq!(cache.get("team-b", "bare"), None, "namespaces are apart");
        // A tenant's 200 KB annotation is not kept; what is kept is refused as a role.
        let huge = format!("acs:ram::1:role/{}", "r".repeat(200_000));
        cache.observe(&Event::Apply(meta("huge", "9", Some(&huge))));
        let (_, kept) = cache.get("team-a", "huge").unwrap();
        assert_eq!(kept.as_deref(), Some(""));
        assert!(role_arn("").is_err());
    }

    #[test]
    fn a_cell_lives_as_long_as_the_service_account_version() {
        let cache = ServiceAccountCache::default();
        cache.observe(&Event::Apply(meta(
            "opener",
            "7",
            Some("acs:ram::1:role/a"),
        )));
        let first = cache.cell("team-a", "opener", "7");
        assert!(Arc::ptr_eq(&first, &cache.cell("team-a", "opener", "7")));
        // The annotation changed: credentials for the old role must not be used again.
        cache.observe(&Event::Apply(meta(
            "opener",
            "9",
            Some("acs:ram::1:role/b"),
        )));
        assert_eq!(cache.cells(), 0);
        assert!(!Arc::ptr_eq(&first, &cache.cell("team-a", "opener", "9")));
        cache.observe(&Event::Delete(meta("opener", "9", None)));
        assert_eq!(cache.cells(), 0);
        cache.cell("team-a", "opener", "9");
        cache.watch_failed();
        assert_eq!(cache.cells(), 0);
    }

    #[test]
    fn role_arns_are_checked_before_use() {
        assert!(role_arn("acs:ram::1234567890123456:role/ecs-vnc-team-a").is_ok());
        assert!(role_arn(" acs:ram::1:role/A.b_c-d ").is_ok());
        for bad in [
            "",
            "arn:aws:iam::1:role/x",
            "acs:ram::1:role/",
            "acs:ram:::role/x",
            "acs:ram::12ab:role/x",
            "acs:ram::1:user/x",
            "acs:ram::1:role/x/y",
            "acs:ram::1:role/x y",
            &format!("acs:ram::1:role/{}", "r".repeat(129)),
        ] {
            assert!(role_arn(bad).is_err(), "{bad:?} accepted");
        }
    }
}
