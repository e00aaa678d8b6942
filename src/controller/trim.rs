//! What the sessions' watch cache keeps of each session: what the controller reads, and no
//! more, so that a tenant's metadata does not become the operator's memory.

use crate::session::VncSession;

/// Drops what the controller never reads before a session enters the watch cache. It reads the
/// name, namespace, uid, resourceVersion, generation, creation and deletion times, the refresh
/// annotation, spec and status (the status is written back whole, so it is kept whole). Gone:
/// managedFields (set to None, not cleared: a cleared Vec keeps its buffer), labels, every other
/// annotation (kubectl's last-applied copy of the manifest is most of an applied session's
/// bytes), owner references, finalizers and generateName. Measured in BENCHMARKS.md: a session
/// at rest costs the operator about 3 KiB, most of it the status.
pub fn trim(session: &mut VncSession) {
    let meta = &mut session.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| key == crate::session::crd::REFRESH_ANNOTATION);
        // A tenant may write hundreds of kilobytes there: the cache keeps a bounded record.
        for value in annotations.values_mut() {
            if let Some(bounded) = crate::session::refresh::cache_form(value) {
                *value = bounded;
            }
        }
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;

    #[test]
    fn the_cache_keeps_what_the_controller_reads_and_drops_the_rest() {
        let mut session: VncSession = serde_json::from_value(serde_json::json!({
            "apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
            "metadata": {
                "name": "web-1", "namespace": "team-a", "uid": "u-1", "resourceVersion": "7",
                "generation": 2, "creationTimestamp": "2026-12-01T00:00:00Z",
                "generateName": "web-",
                "labels": {"app.kubernetes.io/name": "web"},
                "annotations": {
                    "ecsvnc.dev/refresh": "r1",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}",
                    "team.example/owner": "alice",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-o"}],
                "finalizers": ["example.com/hold"],
            },
            "spec": {"regionId": "cn-hangzhou", "instanceId": "i-abc"},
            "status": {"phase": "Expired", "requestId": "r", "conditions": [{
                "type": "Ready", "status": "False", "reason": "Expired", "message": "m",
                "lastTransitionTime": "2026-12-01T00:00:00Z"}]},
        }))
        .unwrap();
        let status = session.status.clone();
        trim(&mut session);
        let meta = &session.metadata;
        assert!(meta.managed_fields.is_none() && meta.labels.is_none());
        assert!(meta.owner_references.is_none() && meta.finalizers.is_none());
        assert!(meta.generate_name.is_none());
        assert_eq!(
            session.annotations().keys().collect::<Vec<_>>(),
            ["ecsvnc.dev/refresh"]
        );
        // What the controller reads is all still there.
        assert_eq!(session.name_any(), "web-1");
        assert_eq!(session.namespace().as_deref(), Some("team-a"));
        assert_eq!(meta.uid.as_deref(), Some("u-1"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.generation, Some(2));
        assert!(meta.creation_timestamp.is_some());
        assert_eq!(session.spec.instance_id, "i-abc");
        assert_eq!(session.status, status, "the status is written back whole");

        // A huge refresh value is cut down to its bounded record, which is still refused.
        let mut huge = session.clone();
        huge.annotations_mut()
            .insert("ecsvnc.dev/refresh".into(), "r".repeat(200_000));
        trim(&mut huge);
        let kept = &huge.annotations()["ecsvnc.dev/refresh"];
        assert!(kept.len() < 64, "{} bytes kept", kept.len());
        assert!(crate::session::refresh::refusal(kept).is_some());

        // No annotation left: none at all.
        let mut bare = session.clone();
        bare.annotations_mut().clear();
        bare.annotations_mut().insert("other".into(), "x".into());
        trim(&mut bare);
        assert!(bare.metadata.annotations.is_none());
    }
}
