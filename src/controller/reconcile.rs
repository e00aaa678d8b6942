//! One reconcile: observe, decide, carry out, record.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use tracing::Instrument;

use super::{Context, Error, credentials, fairness, issue, write};
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
    let key = super::context::session_key(&session);
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
    session: &VncSession,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    if session.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = session.metadata.uid.clone().unwrap_or_default();
    let base = session.metadata.resource_version.clone();
    // A cached copy older than this process's own last write: deciding on it could serve a
    // request twice. The watch is about to deliver the newer version; no read needed.
    if base
        .as_deref()
        .is_some_and(|v| ctx.superseded.is_stale(&uid, v))
    {
        return Ok(Action::await_change());
    }
    let api: Api<VncSession> = Api::namespaced(ctx.client.clone(), namespace);
    let mut write = Writing::new(&api, session, &uid, base);
    // An outcome whose status write failed earlier is written now, never issued again.
    if let Some(kept) = ctx.unwritten.take(&uid) {
        tracing::info!("writing the outcome of an earlier ECS call");
        return write.outcome(ctx, kept, None).await;
    }
    let version = credentials::version(&ctx.credential_sources(), namespace, &session.spec);
    let observed = observe(
        session,
        version.as_deref(),
        ctx.settings.limits.url_validity,
    )?;
    let now = Timestamp::now();
    let cause = match recheck_throttled(ctx, session, decide::decide(&observed, now), now) {
        Decision::Wait(at) => return Ok(requeue(at)),
        Decision::Write(update) => return write.decided(ctx, *update).await,
        Decision::Issue(cause) => cause,
    };
    // Held until the outcome is written; over the namespace's share, look again soon.
    let Some(slot) = ctx.namespace_slots.try_take(namespace) else {
        tracing::debug!(?cause, "namespace at its share of ECS calls in flight");
        return Ok(Action::requeue(fairness::retry_after()));
    };
    tracing::info!(?cause, "issuing a console URL");
    let started = std::time::Instant::now();
    if cause == IssueCause::Retry {
        ctx.metrics.retried("DescribeInstanceVncUrl");
    }
    if cause == IssueCause::First {
        // Show Pending while the first call runs; later writes build on its version.
        let pending = decide::pending(&observed);
        if !write.pending(&pending).await? {
            // Someone else wrote first: decide again on the version the watch brings.
            return Ok(Action::await_change());
        }
    }
    let known_os = decide::known_os(&observed, cause);
    // Stopping: nothing was sent; the next process decides afresh.
    let Some((outcome, used_version)) = issue::issue(ctx, namespace, session, known_os).await
    else {
        return Ok(Action::await_change());
    };
    let observed = Observed {
        credentials_version: used_version.as_deref(),
        ..observed
    };
    let update = decide::after_issue(
        &observed,
        cause,
        outcome,
        Timestamp::now(),
        ctx.settings.limits,
        fastrand::f64(),
    );
    let action = write.outcome(ctx, update, Some(started)).await;
    drop(slot);
    action
}

/// One reconcile's writes onto one session: the versions it wrote over, recorded once done.
struct Writing<'a> {
    api: &'a Api<VncSession>,
    session: &'a VncSession,
    uid: &'a str,
    resource_version: Option<String>,
    /// Every version this reconcile writes over; recorded once its outcome is written.
    replaced: Vec<String>,
}

impl<'a> Writing<'a> {
    fn new(
        api: &'a Api<VncSession>,
        session: &'a VncSession,
        uid: &'a str,
        resource_version: Option<String>,
    ) -> Self {
        Self {
            api,
            session,
            uid,
            replaced: resource_version.iter().cloned().collect(),
            resource_version,
        }
    }

    /// Writes `status` on the version read, and builds the later writes on the one it makes.
    /// False: someone else wrote first.
    async fn pending(&mut self, status: &VncSessionStatus) -> Result<bool, Error> {
        let version = self.resource_version.as_deref();
        match write::status(self.api, self.session, version, status).await? {
            write::Written::Done(version) => {
                self.replaced.extend(version.clone());
                self.resource_version = version;
                Ok(true)
            }
            write::Written::Conflict | write::Written::Gone => Ok(false),
        }
    }

    /// An expiry or close decided on the cache, written conditionally on its version; on a
    /// conflict the newer version's watch event decides again.
    async fn decided(self, ctx: &Context, update: decide::Update) -> Result<Action, Error> {
        let result = write::status(
            self.api,
            self.session,
            self.resource_version.as_deref(),
            &update.status,
        );
        if !matches!(result.await?, write::Written::Done(_)) {
            return Ok(Action::await_change());
        }
        ctx.metrics.decided(&update);
        Ok(self.record(ctx, &update, "Expire", None).await)
    }

    /// The outcome of an ECS call, written whatever happens meanwhile; kept in memory when the
    /// API server cannot take it now.
    async fn outcome(
        mut self,
        ctx: &Context,
        update: decide::Update,
        started: Option<std::time::Instant>,
    ) -> Result<Action, Error> {
        let version = self.resource_version.take();
        match write_outcome(self.api, self.session, version, &update, &mut self.replaced).await {
            Ok(true) => Ok(self.record(ctx, &update, "Issue", started).await),
            Ok(false) => Ok(Action::await_change()),
            Err(e) => {
                ctx.unwritten.keep(self.uid, update);
                Err(e)
            }
        }
    }

    /// After a write: bookkeeping, the log line, metrics, the Event; when to look again.
    async fn record(
        self,
        ctx: &Context,
        update: &decide::Update,
        action: &str,
        started: Option<std::time::Instant>,
    ) -> Action {
        ctx.superseded.record(self.uid, self.replaced);
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
            write::event(ctx, self.session, note, action).await;
        }
        requeue(update.wake_at)
    }
}

/// A throttled session stored when its slot would free under the limiter of the time (an earlier
/// process, another `--reconnect-limit-per-minute`); the limiter of now decides instead.
fn recheck_throttled(
    ctx: &Context,
    session: &VncSession,
    decision: Decision,
    now: Timestamp,
) -> Decision {
    let Decision::Wait(stored) = decision else {
        return decision;
    };
    let throttled = session.status.as_ref().is_some_and(|st| {
        st.phase == Some(Phase::Pending)
            && st
                .last_error
                .as_ref()
                .is_some_and(|e| e.code == Reason::Throttled.as_str())
    });
    if !throttled {
        return decision;
    }
    let spec = &session.spec;
    let seed = || ctx.recent_issues(&spec.region_id, &spec.instance_id);
    match ctx
        .limiter
        .free_at_seeded(&spec.region_id, &spec.instance_id, now, seed)
    {
        None => Decision::Issue(IssueCause::Retry),
        Some(free_at) if stored.is_none_or(|at| free_at < at) => Decision::Wait(Some(free_at)),
        Some(_) => decision,
    }
}

/// How often an issue's outcome is written again onto a newer object before giving up.
const OUTCOME_WRITES: u32 = 5;

/// Writes the outcome of an ECS call. A URL cannot be taken back, so a conflict (someone labelled
/// or annotated the session meanwhile) is no reason to call ECS again: the same outcome is written
/// onto the newer object, unless it is gone. Returns whether it was written.
async fn write_outcome(
    api: &Api<VncSession>,
    session: &VncSession,
    mut version: Option<String>,
    update: &decide::Update,
    replaced: &mut Vec<String>,
) -> Result<bool, Error> {
    for _ in 0..OUTCOME_WRITES {
        match write::status(api, session, version.as_deref(), &update.status).await? {
            write::Written::Done(_) => return Ok(true),
            write::Written::Gone => return Ok(false),
            write::Written::Conflict => {
                let Some(newer) = api.get_opt(&session.name_any()).await? else {
                    return Ok(false);
                };
                // Deleted, or deleted and created again under the same name (perhaps for
                // another instance): this outcome is not its.
                if newer.metadata.deletion_timestamp.is_some()
                    || newer.metadata.uid != session.metadata.uid
                {
                    return Ok(false);
                }
                tracing::debug!(
                    "the session changed during the ECS call; writing onto the newer version"
                );
                version = newer.metadata.resource_version;
                replaced.extend(version.clone());
            }
        }
    }
    Err(Error::StatusConflict(OUTCOME_WRITES))
}

fn observe<'a>(
    session: &'a VncSession,
    credentials_version: Option<&'a str>,
    url_validity: Duration,
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
        url_validity,
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
    let failures = ctx.record_failure(&super::context::session_key(&session));
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
