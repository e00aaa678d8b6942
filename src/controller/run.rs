//! Wires the controller: sessions, the Secrets and ServiceAccounts they reference (metadata
//! only), readiness, shutdown.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use kube::{Api, Resource, ResourceExt};

use super::trim::trim;
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
    // ServiceAccounts are watched only when keyless sessions are on (--keyless-sessions and an
    // OIDC provider): otherwise the operator is not granted them. The operator's own RRSA reads
    // the same provider ARN and does not turn them on.
    let keyless = ctx.settings.keyless_sessions && ctx.settings.oidc_provider_arn.is_some();
    preflight(&ctx, keyless).await?;

    // Our own reflector, so readiness can be tied to the first complete list of every watch.
    let (store, writer) = reflector::store();
    let _ = ctx.sessions.set(store.clone());
    let synced = Synced::new(probe.clone(), if keyless { 3 } else { 2 });
    let sessions = watcher(scoped(&ctx), paged())
        .default_backoff()
        .modify(trim)
        .inspect_ok(synced.watch())
        .reflect(writer)
        .inspect_ok(bookkeeping(&ctx, store.clone()))
        .touched_objects();
    let controller = Controller::for_stream(sessions, store.clone()).with_config(
        // Bounded: each reconcile in flight holds an HTTP/1 connection to the API server (and
        // one to ECS), and idle ones stay pooled; unbounded, a burst of 2,000 new sessions
        // opened hundreds of TLS connections, most of the operator's memory.
        controller::Config::default().concurrency(ctx.settings.max_concurrent_reconciles),
    );
    probe.watch_sessions(store.clone());
    // Versions for the credentials cache: an unchanged Secret is never read again.
    let secrets = references(
        &ctx,
        &synced,
        |c, e| c.secrets.observe(e),
        |c| c.secrets.watch_failed(),
    );
    let mut controller = controller.watches_stream(
        secrets,
        sessions_using(store.clone(), |spec| spec.credentials_ref.as_ref()),
    );
    if keyless {
        // Versions and role annotations: which role a token is exchanged for, and when cached
        // STS credentials are stale.
        let accounts = references(
            &ctx,
            &synced,
            |c, e| c.service_accounts.observe(e),
            |c| c.service_accounts.watch_failed(),
        );
        controller = controller.watches_stream(
            accounts,
            sessions_using(store, |spec| spec.service_account_ref.as_ref()),
        );
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

/// Fails at once with the fix, instead of a watch that retries a 404 forever (no CRD) or is
/// refused forever and never ready (keyless sessions without the grant to list ServiceAccounts).
async fn preflight(ctx: &Context, keyless: bool) -> Result<(), Error> {
    let one = ListParams::default().limit(1);
    if let Err(kube::Error::Api(s)) = scoped::<VncSession>(ctx).list(&one).await
        && s.code == 404
    {
        return Err(Error::CrdNotInstalled);
    }
    if keyless
        && let Err(kube::Error::Api(s)) = scoped::<ServiceAccount>(ctx).list_metadata(&one).await
        && s.code == 403
    {
        return Err(Error::ServiceAccountsForbidden);
    }
    Ok(())
}

/// `K` where sessions are watched: `--watch-namespace`, else every namespace.
fn scoped<K>(ctx: &Context) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match &ctx.settings.watch_namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

/// Per-session bookkeeping goes with the session (a re-list reports no deletions).
fn bookkeeping(
    ctx: &Arc<Context>,
    listed: Store<VncSession>,
) -> impl FnMut(&watcher::Event<VncSession>) + use<> {
    let ctx = ctx.clone();
    move |event| match event {
        watcher::Event::Delete(session) => ctx.forget_session(session),
        watcher::Event::InitDone => ctx.retain_sessions(&listed.state()),
        _ => {}
    }
}

/// A metadata-only watch of objects sessions reference, fed to the cache `observe` writes to
/// (`failed` when the watch fails). kube asks the API server for PartialObjectMetadata on list
/// and watch, so no Secret's data ever reaches the operator through it, yet it sees every change.
fn references<K>(
    ctx: &Arc<Context>,
    synced: &Arc<Synced>,
    observe: fn(&Context, &watcher::Event<PartialObjectMeta<K>>),
    failed: fn(&Context),
) -> impl Stream<Item = Result<PartialObjectMeta<K>, watcher::Error>> + Send + use<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + Debug,
    K: Send + Sync + 'static,
{
    let (seen, failing) = (ctx.clone(), ctx.clone());
    watcher(scoped::<PartialObjectMeta<K>>(ctx), paged())
        .default_backoff()
        .inspect_ok(synced.watch())
        .inspect_ok(move |event| observe(&seen, event))
        .inspect_err(move |_| failed(&failing))
        .touched_objects()
}

/// Objects per page of a first list (and of every re-list). Served from etcd in pages rather
/// than from the watch cache in one answer (`resourceVersion=0` ignores the limit): a page is
/// what the operator holds at once, body and parsed objects, before anything is trimmed, and a
/// tenant's object may be as large as etcd allows (about 1.5 MiB: labels have no total bound).
/// 10 such objects are about 15 MiB; 10,000 small ones take 1,000 round trips.
pub const LIST_PAGE_SIZE: u32 = 10;

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

/// Maps a changed object to the sessions whose reference (`credentialsRef` or
/// `serviceAccountRef`, picked by `reference`) names it (same namespace only).
fn sessions_using<K>(
    store: Store<VncSession>,
    reference: fn(&VncSessionSpec) -> Option<&LocalObjectRef>,
) -> impl Fn(PartialObjectMeta<K>) -> Vec<ObjectRef<VncSession>> + Send + Sync + 'static
where
    PartialObjectMeta<K>: Resource,
{
    move |object| {
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
}
