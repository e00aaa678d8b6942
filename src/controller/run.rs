//! Wires the controller: sessions, the Secrets they reference (metadata only), shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, ResourceExt};

use super::{Context, Error, error_policy, reconcile};
use crate::session::VncSession;
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

    // Our own reflector, so readiness can be tied to the first complete list of both watches.
    let (store, writer) = reflector::store();
    let _ = ctx.sessions.set(store.clone());
    let synced = Synced::new(probe.clone(), 2);
    let bookkeeping = ctx.clone();
    let listed = store.clone();
    let sessions_stream = watcher(sessions, watcher::Config::default().any_semantic())
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
    let secret_changes = watcher(secrets, watcher::Config::default().any_semantic())
        .default_backoff()
        .inspect_ok(synced.watch())
        // Versions for the credentials cache: an unchanged Secret is never read again.
        .inspect_ok({
            let ctx = secret_cache.clone();
            move |event| ctx.secrets.observe(event)
        })
        .inspect_err(move |_| secret_cache.secrets.watch_failed())
        .touched_objects();
    controller
        .watches_stream(secret_changes, move |secret| {
            sessions_using(&store, &secret)
        })
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

/// Drops what the controller never reads before a session enters the watch cache: managedFields
/// and kubectl's last-applied copy of the manifest are most of a session's bytes, and at 10,000
/// sessions they are most of the operator's memory.
fn trim(session: &mut VncSession) {
    session.managed_fields_mut().clear();
    session
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
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

/// The sessions whose `credentialsRef` names this Secret (same namespace only).
fn sessions_using(
    store: &Store<VncSession>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<VncSession>> {
    let namespace = secret.namespace();
    let name = secret.name_any();
    store
        .state()
        .iter()
        .filter(|s| s.namespace() == namespace)
        .filter(|s| {
            s.spec
                .credentials_ref
                .as_ref()
                .is_some_and(|r| r.name == name)
        })
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
                "name": "web-1", "namespace": "team-a",
                "annotations": {
                    "ecsvnc.dev/refresh": "r1",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}",
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {"regionId": "cn-hangzhou", "instanceId": "i-abc"},
        }))
        .unwrap();
        trim(&mut session);
        assert!(
            session
                .metadata
                .managed_fields
                .as_ref()
                .is_none_or(Vec::is_empty)
        );
        assert_eq!(
            session.annotations().keys().collect::<Vec<_>>(),
            ["ecsvnc.dev/refresh"]
        );
    }
}
