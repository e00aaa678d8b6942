//! One reconcile: observe, decide, carry out, record.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::{Context, Error, credentials, issue, write};
use crate::session::crd::{Phase, REFRESH_ANNOTATION};
use crate::session::decide::{self, Decision, IssueCause, Observed, Reason};
use crate::session::{VncSession, VncSessionStatus};

pub async fn reconcile(session: Arc<VncSession>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = session
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = session.name_any();
    // `session`, not `name`: JSON logs put the span's own name under `name`.
    let span = tracing::info_span!("reconcile", namespace = %namespace, session = %name);
    let key = format!("{namespace}/{name}");
    let result = reconcile_one(&session, &namespace, &ctx)
        .instrument(span)
        .await;
    ctx.metrics.reconciled(result.is_ok());
    if result.is_ok() {
        ctx.clear_failures(&key);
    }
    result
}

async fn reconcile_one(
    cached: &VncSession,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let now = Timestamp::now();
    if cached.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let cached_version = credentials_version(ctx, namespace, cached).await?;
    let api: Api<VncSession> = Api::namespaced(ctx.client.clone(), namespace);
    let fresh;
    let (session, version, decided) =
        match decide::decide(&observe(cached, cached_version.as_deref())?, now) {
            Decision::Wait(at) => return Ok(requeue(at)),
            // A status-only write is conditional on the cached resourceVersion: were the cache
            // stale, the API server refuses it (409) and the newer version's watch event decides
            // again. No read needed.
            write @ Decision::Write(_) => (cached, cached_version, Some(write)),
            // An ECS call cannot be taken back: re-read first, since the watch cache can lag
            // behind this operator's own last write and a stale copy would issue a URL twice.
            Decision::Issue(_) => {
                let Some(read) = api.get_opt(&cached.name_any()).await? else {
                    return Ok(Action::await_change());
                };
                if read.metadata.deletion_timestamp.is_some() {
                    return Ok(Action::await_change());
                }
                fresh = read;
                let version = credentials_version(ctx, namespace, &fresh).await?;
                (&fresh, version, None)
            }
        };
    // On a conflict: a fresh read is decided again at once; a cached copy waits for the newer
    // version, which the watch is about to deliver.
    let on_conflict = if decided.is_some() {
        Action::await_change()
    } else {
        Action::requeue(Duration::ZERO)
    };
    let observed = observe(session, version.as_deref())?;
    let mut started = None;
    let mut resource_version = session.metadata.resource_version.clone();
    let decision = decided.unwrap_or_else(|| decide::decide(&observed, Timestamp::now()));
    let (update, action) = match decision {
        Decision::Wait(at) => return Ok(requeue(at)),
        Decision::Write(update) => (*update, "Expire"),
        Decision::Issue(cause) => {
            tracing::info!(?cause, "issuing a console URL");
            started = Some(std::time::Instant::now());
            if cause == IssueCause::First {
                // Show Pending while the first call runs; later writes build on its version.
                let pending = decide::pending(&observed);
                match write::status(&api, session, resource_version.as_deref(), &pending).await? {
                    write::Written::Done(version) => resource_version = version,
                    write::Written::Conflict => return Ok(on_conflict),
                    write::Written::Gone => return Ok(Action::await_change()),
                }
            }
            let known_os = decide::known_os(&observed, cause);
            let (outcome, used_version) = issue::issue(ctx, namespace, session, known_os).await;
            let observed = Observed {
                credentials_version: used_version.as_deref(),
                ..observed
            };
            let limits = ctx.settings.limits;
            let update = decide::after_issue(
                &observed,
                cause,
                outcome,
                Timestamp::now(),
                limits,
                fastrand::f64(),
            );
            (update, "Issue")
        }
    };

    match write::status(&api, session, resource_version.as_deref(), &update.status).await? {
        write::Written::Conflict => return Ok(on_conflict),
        write::Written::Gone => return Ok(Action::await_change()),
        write::Written::Done(_) => {}
    }
    tracing::info!(
        phase = update.status.phase.map(Phase::as_str).unwrap_or_default(),
        reason = update
            .note
            .as_ref()
            .map(|n| n.reason.as_str())
            .unwrap_or_default(),
        "status written"
    );
    if update.status.phase == Some(Phase::Ready)
        && let Some(started) = started
    {
        ctx.metrics.url_issued(started.elapsed().as_secs_f64());
    }
    if let Some(note) = &update.note {
        if note.reason == Reason::Throttled {
            ctx.metrics.throttled.inc();
        }
        write::event(ctx, session, note, action).await;
    }
    Ok(requeue(update.wake_at))
}

/// Only sessions waiting for their Secret to change need its version; the rest skip the read.
async fn credentials_version(
    ctx: &Context,
    namespace: &str,
    session: &VncSession,
) -> Result<Option<String>, Error> {
    let waiting = session
        .status
        .as_ref()
        .is_some_and(|s| s.phase == Some(Phase::Failed) && !s.refreshable);
    if !waiting {
        return Ok(session
            .status
            .as_ref()
            .and_then(|s| s.credentials_version.clone()));
    }
    Ok(credentials::version(&ctx.client, namespace, &session.spec).await?)
}

fn observe<'a>(
    session: &'a VncSession,
    credentials_version: Option<&'a str>,
) -> Result<Observed<'a>, Error> {
    static EMPTY: std::sync::LazyLock<VncSessionStatus> =
        std::sync::LazyLock::new(VncSessionStatus::default);
    let created_at = session
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .ok_or(Error::MissingMetadata("creationTimestamp"))?;
    Ok(Observed {
        spec: &session.spec,
        status: session.status.as_ref().unwrap_or(&EMPTY),
        generation: session.metadata.generation.unwrap_or(0),
        refresh: session
            .annotations()
            .get(REFRESH_ANNOTATION)
            .map(String::as_str),
        created_at,
        credentials_version,
    })
}

/// Looks again exactly when the next thing is due, or only on change.
fn requeue(at: Option<Timestamp>) -> Action {
    match at {
        None => Action::await_change(),
        Some(at) => {
            let wait = at.duration_since(Timestamp::now());
            // Whole milliseconds, rounded up, so the next look is never a hair early.
            let ms = wait.as_millis().max(0) as u64 + 1;
            Action::requeue(Duration::from_millis(ms))
        }
    }
}

/// Shell errors (the Kubernetes API failing) back off per object, capped, with jitter.
pub fn error_policy(session: Arc<VncSession>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{}/{}",
        session.namespace().unwrap_or_default(),
        session.name_any()
    );
    let failures = ctx.record_failure(&key);
    let delay = decide::backoff(failures, fastrand::f64());
    tracing::warn!(
        namespace = %session.namespace().unwrap_or_default(),
        name = %session.name_any(),
        error = %error,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}
