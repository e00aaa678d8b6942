//! Carries out one issue: credentials, endpoint, Windows or not, the per-instance limit, then
//! `DescribeInstanceVncUrl`. Every way it can end is an [`Outcome`] for the decision function.

use jiff::Timestamp;

use super::Context;
use super::credentials::{self, Found, Renewer};
use super::pacer::PaceKey;
use crate::aliyun::{EcsError, Endpoint, console_url, os_type_is_windows};
use crate::session::decide::Outcome;
use crate::session::{VncSession, VncSessionSpec};

/// Asks ECS for a URL for `session`. Also returns the resourceVersion of the credentials Secret
/// that was used (or looked for), so a failure can wait for that Secret to change.
pub async fn issue(
    ctx: &Context,
    namespace: &str,
    session: &VncSession,
    known_os: Option<bool>,
) -> (Outcome, Option<String>) {
    let spec = &session.spec;
    // Where the request would go is settled first: an endpoint outside the allow-list gets
    // nothing, not even a Secret read on its behalf.
    let endpoint = match endpoint(ctx, spec) {
        Ok(e) => e,
        Err(failure) => return (failure.with_os(known_os), None),
    };
    let (found, version) = match credentials::load(ctx, namespace, spec).await {
        Ok(loaded) => loaded,
        Err(e) => {
            return (
                Outcome::Failed {
                    code: "SecretReadFailed".to_owned(),
                    message: format!("could not read the credentials Secret: {}", kube_reason(&e)),
                    retryable: true,
                    is_windows: known_os,
                },
                None,
            );
        }
    };
    let (creds, renewer) = match found {
        Found::Credentials(c) => (c, None),
        Found::Renewed(c, renewer) => (c, Some(renewer)),
        Found::Missing(message) => return (Outcome::CredentialsNotFound { message }, version),
        Found::Failed {
            code,
            message,
            retryable,
        } => {
            let failed = Outcome::Failed {
                code,
                message,
                retryable,
                is_windows: known_os,
            };
            return (failed, version);
        }
    };

    // Every ECS call waits for its turn on this key and region (ECS's account flow control).
    let pace = PaceKey::new(creds.access_key_id(), &spec.region_id);
    let is_windows = match known_os {
        Some(w) => w,
        None => match ctx
            .pacer
            .run(
                &pace,
                ctx.ecs
                    .describe_os_type(&endpoint, &creds, &spec.region_id, &spec.instance_id),
            )
            .await
        {
            Ok(Ok(os)) => os_type_is_windows(&os),
            Ok(Err(e)) => return (failed(&e, None, renewer.as_ref()), version),
            Err(free_at) => return (paced(free_at, None), version),
        },
    };

    let now = Timestamp::now();
    let seed = || ctx.recent_issues(&spec.region_id, &spec.instance_id);
    if let Err(free_at) =
        ctx.limiter
            .try_acquire_seeded(&spec.region_id, &spec.instance_id, now, seed)
    {
        return (
            Outcome::Throttled {
                free_at,
                limit: ctx.limiter.per_minute(),
                is_windows: Some(is_windows),
            },
            version,
        );
    }

    match ctx
        .pacer
        .run(
            &pace,
            ctx.ecs.describe_instance_vnc_url(
                &endpoint,
                &creds,
                &spec.region_id,
                &spec.instance_id,
            ),
        )
        .await
    {
        Ok(Ok(issued)) => (
            Outcome::Issued {
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
            version,
        ),
        Ok(Err(e)) => {
            // Refused outright (a wrong key, an unknown instance): no URL exists, so the slot goes
            // back. Otherwise anyone able to name the instance could use up its limit with junk
            // keys and lock out the sessions that may open it.
            if !e.is_retryable() {
                ctx.limiter
                    .give_back(&spec.region_id, &spec.instance_id, now);
            }
            (failed(&e, Some(is_windows), renewer.as_ref()), version)
        }
        Err(free_at) => {
            // Not sent: the slot was never used.
            ctx.limiter
                .give_back(&spec.region_id, &spec.instance_id, now);
            (paced(free_at, Some(is_windows)), version)
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
/// refused unless it is the operator's own `--ecs-endpoint` or matches `--allowed-endpoints`.
fn endpoint(ctx: &Context, spec: &VncSessionSpec) -> Result<Endpoint, Refused> {
    let own = ctx.settings.ecs_endpoint.as_deref();
    let chosen = spec.endpoint.as_deref().or(own);
    let endpoint = Endpoint::resolve(&spec.region_id, chosen).map_err(|e| Refused {
        code: "InvalidEndpoint",
        message: e.to_string(),
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

/// `lastError.code` of a session whose endpoint the operator refuses to contact.
pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";

fn failed(e: &EcsError, is_windows: Option<bool>, renewer: Option<&Renewer>) -> Outcome {
    if let (Some(renewer), EcsError::SecurityTokenRejected { code, .. }) = (renewer, e) {
        // Credentials the operator exchanged itself: no Secret to fix. Drop them; the retry
        // exchanges afresh (and a rejection that persists backs off like any retryable error).
        renewer.invalidate();
        return Outcome::Failed {
            code: code.clone(),
            message: format!(
                "ECS rejected the temporary credentials the operator obtained through STS \
                 ({code}); they were dropped and are exchanged again on the next attempt"
            ),
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

/// A Kubernetes error as one short line, e.g. `secrets "x" is forbidden: …` (code and reason).
pub fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
