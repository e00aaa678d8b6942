//! Wires the controller: sessions, the Secrets and ServiceAccounts they reference (metadata
//! only), shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, ResourceExt};

use super::{Context, Error, error_policy, reconcile};
use crate::session::crd::LocalObjectRef;
use crate::session::{VncSession, VncSessionSpec};
use crate::telemetry::server::Probe;

/// Runs until `shutdown` completes, then lets in-flight reconciles finish.
pub async fn run(
    ctx: Arc<Context>,
    probe: Arc<Probe>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), Error> {
    let client = ctx.client.clone();
    let (sessions, secrets): (Api<VncSession>, Api<PartialObjectMeta<Secret>>) =
        match &ctx.settings.watch_namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (Api::all(client.clone()), Api::all(client)),
        };
    // Fail at once with the fix, instead of a watch that retries a 404 forever.
    if let Err(kube::Error::Api(s)) = sessions.list(&ListParams::default().limit(1)).await
        && s.code == 404
    {
        return Err(Error::CrdNotInstalled);
    }

    // ServiceAccounts are watched only when keyless sessions are on (--keyless-sessions and an
    // OIDC provider): otherwise the operator is not granted them. The operator's own RRSA reads
    // the same provider ARN and does not turn them on.
    let keyless = ctx.settings.keyless_sessions && ctx.settings.oidc_provider_arn.is_some();
    // Fail at once with the fix, instead of a watch refused forever and never ready.
    if keyless
        && let Err(kube::Error::Api(s)) = service_accounts(&ctx)
            .list_metadata(&ListParams::default().limit(1))
            .await
        && s.code == 403
    {
        return Err(Error::ServiceAccountsForbidden);
    }

    // Our own reflector, so readiness can be tied to the first complete list of both watches.
    let (store, writer) = reflector::store();
    let _ = ctx.sessions.set(store.clone());
    let synced = Synced::new(probe.clone(), if keyless { 3 } else { 2 });
    let bookkeeping = ctx.clone();
    let listed = store.clone();
    let sessions_stream = watcher(sessions, paged())
        .default_backoff()
        .modify(trim)
        .inspect_ok(synced.watch())
        .reflect(writer)
        // Per-session bookkeeping goes with the session (a re-list reports no deletions).
        .inspect_ok(move |event| match event {
            watcher::Event::Delete(session) => bookkeeping.forget_session(session),
            watcher::Event::InitDone => bookkeeping.retain_sessions(&listed.state()),
            _ => {}
        })
        .touched_objects();
    let controller = Controller::for_stream(sessions_stream, store.clone()).with_config(
        // Bounded: each reconcile in flight holds an HTTP/1 connection to the API server (and
        // one to ECS), and idle ones stay pooled; unbounded, a burst of 2,000 new sessions
        // opened hundreds of TLS connections, most of the operator's memory.
        controller::Config::default().concurrency(ctx.settings.max_concurrent_reconciles),
    );
    probe.watch_sessions(store.clone());
    // Metadata only: kube asks the API server for PartialObjectMetadata on list and watch, so no
    // Secret's data ever reaches the operator through this watch, yet it sees every change.
    let secret_cache = ctx.clone();
    let secret_changes = watcher(secrets, paged())
        .default_backoff()
        .inspect_ok(synced.watch())
        // Versions for the credentials cache: an unchanged Secret is never read again.
        .inspect_ok({
            let ctx = secret_cache.clone();
            move |event| ctx.secrets.observe(event)
        })
        .inspect_err(move |_| secret_cache.secrets.watch_failed())
        .touched_objects();
    let secret_sessions = store.clone();
    let mut controller = controller.watches_stream(secret_changes, move |secret| {
        sessions_using(&secret_sessions, &secret, |spec| {
            spec.credentials_ref.as_ref()
        })
    });
    if keyless {
        let cache = ctx.clone();
        let account_changes = watcher(service_accounts(&ctx), paged())
            .default_backoff()
            .inspect_ok(synced.watch())
            // Versions and role annotations: which role a token is exchanged for, and when
            // cached STS credentials are stale.
            .inspect_ok({
                let ctx = cache.clone();
                move |event| ctx.service_accounts.observe(event)
            })
            .inspect_err(move |_| cache.service_accounts.watch_failed())
            .touched_objects();
        controller = controller.watches_stream(account_changes, move |account| {
            sessions_using(&store, &account, |spec| spec.service_account_ref.as_ref())
        });
    }
    // From the signal on, no new ECS call starts; the reconciles in flight finish.
    let stopping = ctx.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.stopping.set();
    };
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    Ok(())
}

/// ServiceAccounts where sessions are watched, as metadata only.
fn service_accounts(ctx: &Context) -> Api<PartialObjectMeta<ServiceAccount>> {
    match &ctx.settings.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// Drops what the controller never reads before a session enters the watch cache. It reads the
/// name, namespace, uid, resourceVersion, generation, creation and deletion times, the refresh
/// annotation, spec and status (the status is written back whole, so it is kept whole). Gone:
/// managedFields (set to None, not cleared: a cleared Vec keeps its buffer), labels, every other
/// annotation (kubectl's last-applied copy of the manifest is most of an applied session's
/// bytes), owner references, finalizers and generateName. Measured in BENCHMARKS.md: a session
/// at rest costs the operator about 3 KiB, most of it the status.
fn trim(session: &mut VncSession) {
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

/// Objects per page of a first list (and of every re-list). Served from etcd in pages rather
/// than from the watch cache in one answer (`resourceVersion=0` ignores the limit): a page is
/// what the operator holds at once, whatever a tenant put into its objects' metadata (up to
/// 256 KiB of annotations each). 50 such objects are about 13 MiB; 10,000 small ones take 200
/// round trips.
pub const LIST_PAGE_SIZE: u32 = 50;

fn paged() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE_SIZE)
}

/// Turns the probe ready once every watch has completed its first list.
struct Synced {
    probe: Arc<Probe>,
    remaining: AtomicUsize,
}

impl Synced {
    fn new(probe: Arc<Probe>, watches: usize) -> Arc<Self> {
        Arc::new(Self {
            probe,
            remaining: AtomicUsize::new(watches),
        })
    }

    /// The event hook for one watch; it counts that watch's first InitDone only, so a later
    /// re-list does not count twice.
    fn watch<K>(self: &Arc<Self>) -> impl FnMut(&watcher::Event<K>) + use<K> {
        let this = self.clone();
        let mut counted = false;
        move |event| {
            if counted || !matches!(event, watcher::Event::InitDone) {
                return;
            }
            counted = true;
            if this.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                tracing::info!("watch caches synced: ready");
                this.probe.set_ready(true);
            }
        }
    }
}

/// The sessions whose reference (`credentialsRef` or `serviceAccountRef`, picked by `reference`)
/// names this object (same namespace only).
fn sessions_using<K>(
    store: &Store<VncSession>,
    object: &PartialObjectMeta<K>,
    reference: impl Fn(&VncSessionSpec) -> Option<&LocalObjectRef>,
) -> Vec<ObjectRef<VncSession>>
where
    PartialObjectMeta<K>: kube::Resource,
{
    let namespace = object.namespace();
    let name = object.name_any();
    store
        .state()
        .iter()
        .filter(|s| s.namespace() == namespace)
        .filter(|s| reference(&s.spec).is_some_and(|r| r.name == name))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
