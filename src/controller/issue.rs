//! Carries out one issue: credentials, endpoint, Windows or not, the per-instance limit, then
//! `DescribeInstanceVncUrl`. Every way it can end is an [`Outcome`] for the decision function.

use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;

use super::Context;
use super::credentials::{self, Failure, Found, Renewer};
use super::error::kube_reason;
use super::pacer::PaceKey;
use crate::aliyun::{
    Credentials, EcsError, Endpoint, EndpointError, console_url, os_type_is_windows,
};
use crate::session::decide::Outcome;
use crate::session::{VncSession, VncSessionSpec};
use crate::telemetry::metrics::Stage;

/// Asks ECS for a URL for `session`. Also returns the resourceVersion of the credentials Secret
/// that was used (or looked for), so a failure can wait for that Secret to change. `None`: the
/// operator is stopping and sent nothing; the next process decides afresh.
pub async fn issue(
    ctx: &Context,
    namespace: &str,
    session: &VncSession,
    known_os: Option<bool>,
) -> Option<(Outcome, Option<String>)> {
    let spec = &session.spec;
    // Where the request would go is settled first: an endpoint outside the allow-list gets
    // nothing, not even a Secret read on its behalf.
    let endpoint = match endpoint(ctx, spec) {
        Ok(e) => e,
        Err(failure) => return Some((counted(ctx, Stage::Spec, failure.with_os(known_os)), None)),
    };
    let sources = ctx.credential_sources();
    let (found, version) = match credentials::load(&sources, namespace, spec).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let failed = Outcome::Failed {
                code: "SecretReadFailed".to_owned(),
                message: format!("could not read the credentials Secret: {}", kube_reason(&e)),
                retryable: true,
                is_windows: known_os,
            };
            return Some((counted(ctx, Stage::Credentials, failed), None));
        }
    };
    let (creds, renewer) = match found {
        Found::Credentials(c) => (c, None),
        Found::Renewed(c, renewer) => (c, Some(renewer)),
        Found::Missing(message) => {
            let missing = Outcome::CredentialsNotFound { message };
            return Some((counted(ctx, Stage::Credentials, missing), version));
        }
        Found::Failed(Failure {
            code,
            message,
            retryable,
        }) => {
            let failed = Outcome::Failed {
                code,
                message,
                retryable,
                is_windows: known_os,
            };
            return Some((counted(ctx, Stage::Credentials, failed), version));
        }
    };
    // Only ECS itself (the regional endpoint or the operator's own) is believed when it says the
    // operator's temporary credentials are bad: any other allowed endpoint could say so on every
    // answer and turn each into a token exchange.
    let by_ecs = judges_credentials(ctx, spec, &endpoint);
    let renewed = renewer.map(|renewer| Judged { renewer, by_ecs });
    // Every ECS call waits for its turn on this key and region (ECS's account flow control). An
    // AccessKeyId is no secret: calls through another endpoint are paced on their own, so its
    // throttling answers cannot slow the key's sessions that go to ECS itself.
    let key_id = match by_ecs {
        true => creds.access_key_id().to_owned(),
        false => format!("{}@{endpoint}", creds.access_key_id()),
    };
    let call = Call {
        ctx,
        spec,
        pace: PaceKey::new(&key_id, &spec.region_id),
        endpoint,
        creds,
        renewed,
    };
    let is_windows = match known_os {
        Some(w) => w,
        None => match call.os_type().await? {
            Ok(w) => w,
            Err(outcome) => return Some((counted(ctx, Stage::Ecs, outcome), version)),
        },
    };
    let outcome = call.vnc_url(is_windows).await?;
    Some((counted(ctx, Stage::Ecs, outcome), version))
}

/// Counts `outcome` if it is a failure at `stage` (`ecsvnc_issue_failures_total`), and hands it on.
fn counted(ctx: &Context, stage: Stage, outcome: Outcome) -> Outcome {
    ctx.metrics.issue_outcome(stage, &outcome);
    outcome
}

/// One session's ECS calls, once endpoint and credentials are settled. `None` from a call: the
/// operator started stopping before its turn came, and nothing was sent.
struct Call<'a> {
    ctx: &'a Context,
    spec: &'a VncSessionSpec,
    pace: PaceKey,
    endpoint: Endpoint,
    creds: Credentials,
    renewed: Option<Judged>,
}

impl Call<'_> {
    /// `DescribeInstances`: whether the instance runs Windows, or the outcome that ends the issue.
    async fn os_type(&self) -> Option<Result<bool, Outcome>> {
        let spec = self.spec;
        let asked = self.ctx.ecs.describe_os_type(
            &self.endpoint,
            &self.creds,
            &spec.region_id,
            &spec.instance_id,
        );
        Some(match paced_call(self.ctx, &self.pace, asked).await? {
            Ok(Ok(os)) => Ok(os_type_is_windows(&os)),
            Ok(Err(e)) => Err(failed(&e, None, self.renewed.as_ref())),
            Err(free_at) => Err(paced(free_at, None)),
        })
    }

    /// The per-instance limit, then `DescribeInstanceVncUrl`.
    async fn vnc_url(&self, is_windows: bool) -> Option<Outcome> {
        let (ctx, spec) = (self.ctx, self.spec);
        let now = Timestamp::now();
        let seed = || ctx.recent_issues(&spec.region_id, &spec.instance_id);
        if let Err(free_at) =
            ctx.limiter
                .try_acquire_seeded(&spec.region_id, &spec.instance_id, now, seed)
        {
            return Some(Outcome::Throttled {
                free_at,
                limit: ctx.limiter.per_minute(),
                is_windows: Some(is_windows),
            });
        }
        let give_back = || {
            ctx.limiter
                .give_back(&spec.region_id, &spec.instance_id, now)
        };
        let asked = ctx.ecs.describe_instance_vnc_url(
            &self.endpoint,
            &self.creds,
            &spec.region_id,
            &spec.instance_id,
        );
        let Some(answer) = paced_call(ctx, &self.pace, asked).await else {
            give_back();
            return None;
        };
        Some(match answer {
            Ok(Ok(issued)) => Outcome::Issued {
                console_url: console_url(
                    &ctx.settings.console_base_url,
                    &issued.vnc_url,
                    &spec.instance_id,
                    is_windows,
                ),
                vnc_url: issued.vnc_url,
                request_id: issued.request_id,
                sent_at: issued.sent_at,
                is_windows,
            },
            Ok(Err(e)) => {
                // The limiter counts URLs ECS may have issued. An error answer (a wrong key, an
                // unknown instance, throttling) or a failure before anything was sent (a host
                // that does not resolve, a refused port): no URL exists, so the slot goes back.
                // Otherwise anyone able to name the instance could use up its limit and lock out
                // the sessions that may open it. Only an answer lost after sending keeps it.
                if e.is_error_answer() || e.never_sent() {
                    give_back();
                }
                failed(&e, Some(is_windows), self.renewed.as_ref())
            }
            Err(free_at) => {
                // Not sent: the slot was never used.
                give_back();
                paced(free_at, Some(is_windows))
            }
        })
    }
}

/// Runs `call` on its pacer turn, unless the operator starts stopping before the turn comes:
/// then nothing is sent (`None`). A call already under way is finished, so its URL is recorded.
async fn paced_call<T>(
    ctx: &Context,
    pace: &PaceKey,
    call: impl Future<Output = Result<T, EcsError>>,
) -> Option<Result<Result<T, EcsError>, Timestamp>> {
    if ctx.stopping.is_set() {
        return None;
    }
    let started = AtomicBool::new(false);
    let call = async {
        started.store(true, Ordering::SeqCst);
        call.await
    };
    let run = ctx.pacer.run(pace, call);
    tokio::pin!(run);
    tokio::select! {
        answer = &mut run => Some(answer),
        () = ctx.stopping.wait() => {
            if started.load(Ordering::SeqCst) {
                Some(run.await)
            } else {
                None
            }
        }
    }
}

/// No turn with the pacer soon enough: nothing was sent; the session comes back at `free_at`.
fn paced(free_at: Timestamp, is_windows: Option<bool>) -> Outcome {
    Outcome::Paced {
        free_at,
        is_windows,
    }
}

/// A refusal decided before anything is sent.
struct Refused {
    code: &'static str,
    message: String,
}

impl Refused {
    fn with_os(self, is_windows: Option<bool>) -> Outcome {
        Outcome::Failed {
            code: self.code.to_owned(),
            message: self.message,
            retryable: false,
            is_windows,
        }
    }
}

/// The endpoint for this session: `spec.endpoint`, else `--ecs-endpoint`, else the regional one;
/// refused for a region the operator does not know, and unless it is the operator's own
/// `--ecs-endpoint` or matches `--allowed-endpoints`.
fn endpoint(ctx: &Context, spec: &VncSessionSpec) -> Result<Endpoint, Refused> {
    let own = ctx.settings.ecs_endpoint.as_deref();
    let chosen = spec.endpoint.as_deref().or(own);
    let regions = &ctx.settings.regions;
    let endpoint = Endpoint::resolve(&spec.region_id, chosen, regions).map_err(|e| match e {
        // Not turned into a host, whichever endpoint was chosen: outside the SDK's table a
        // region id can name a tenant's host (`ecs.oss-accelerate.aliyuncs.com`, a bucket).
        EndpointError::UnknownRegion { .. } | EndpointError::InvalidRegion(_) => Refused {
            code: "InvalidRegionId",
            message: format!("{e}; nothing was sent"),
        },
        _ => Refused {
            code: "InvalidEndpoint",
            message: e.to_string(),
        },
    })?;
    let is_own = own.and_then(|o| Endpoint::parse(o).ok()).as_ref() == Some(&endpoint);
    if is_own || ctx.settings.allowed_endpoints.allows(&endpoint) {
        return Ok(endpoint);
    }
    let what = match &spec.endpoint {
        Some(_) => format!("spec.endpoint {endpoint}"),
        None => format!("the regional endpoint {endpoint}"),
    };
    Err(Refused {
        code: ENDPOINT_NOT_ALLOWED,
        message: format!(
            "{what} is not allowed by the operator's --allowed-endpoints ({}); nothing was sent. \
             Use an allowed endpoint or ask the operator's owner to allow it",
            ctx.settings.allowed_endpoints.as_str()
        ),
    })
}

/// Whether `endpoint` is ECS as the operator knows it: its own `--ecs-endpoint`, the region's
/// endpoint or its VPC endpoint, rather than another host a session author chose.
fn judges_credentials(ctx: &Context, spec: &VncSessionSpec, endpoint: &Endpoint) -> bool {
    let own = ctx.settings.ecs_endpoint.as_deref();
    let own = own.and_then(|o| Endpoint::parse(o).ok());
    let regional = Endpoint::resolve(&spec.region_id, None, &ctx.settings.regions).ok();
    // The region's VPC endpoint is ECS too (a session in a VPC names it in spec.endpoint).
    let vpc = Endpoint::parse(&format!("https://ecs-vpc.{}.aliyuncs.com", spec.region_id)).ok();
    [own, regional, vpc].iter().flatten().any(|e| e == endpoint)
}

/// Renewed credentials, and whether the endpoint they were used at may have them dropped.
struct Judged {
    renewer: Renewer,
    by_ecs: bool,
}

/// `lastError.code` of a session whose endpoint the operator refuses to contact.
pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";

fn failed(e: &EcsError, is_windows: Option<bool>, renewed: Option<&Judged>) -> Outcome {
    if let (Some(renewed), EcsError::SecurityTokenRejected { code, .. }) = (renewed, e) {
        // Credentials the operator exchanged itself: no Secret to fix. Drop them (at most once
        // per gap); the retry exchanges afresh, and a rejection that persists backs off like any
        // retryable error.
        let message = if !renewed.by_ecs {
            format!(
                "spec.endpoint rejected the temporary credentials the operator obtained through \
                 STS ({code}); only ECS's regional endpoint or the operator's own may have them \
                 dropped, so they are kept"
            )
        } else if renewed.renewer.invalidate() {
            format!(
                "ECS rejected the temporary credentials the operator obtained through STS \
                 ({code}); they were dropped and are exchanged again on the next attempt"
            )
        } else {
            format!(
                "ECS rejected the temporary credentials the operator obtained through STS \
                 ({code}) again soon after they were exchanged; retried with backoff"
            )
        };
        return Outcome::Failed {
            code: code.clone(),
            message,
            retryable: true,
            is_windows,
        };
    }
    Outcome::Failed {
        code: e.code().to_owned(),
        message: e.message(),
        retryable: e.is_retryable(),
        is_windows,
    }
}
