//! `ecs-sim`: a protocol-faithful Alibaba Cloud ECS RPC endpoint for tests, demos and benchmarks.
//!
//! It is as strict as ECS, so that a client cannot pass against it while being wrong against ECS.
//!
//! # RPC protocol
//! `POST /` or `GET /`, parameters in the query string (`+` is a literal plus there) and/or an
//! `application/x-www-form-urlencoded` body (`+` is a space there). A repeated parameter, a broken
//! `%` escape or non-UTF-8 is `400 InvalidParameter`. Every answer is JSON, with a fresh uppercase
//! `RequestId` (also in the `x-acs-request-id` header); errors are
//! `{"RequestId","HostId","Code","Message","Recommend"}`. Checks, in order:
//!
//! | check | status | `Code` |
//! |---|---|---|
//! | a common parameter (`Action Version Format AccessKeyId SignatureMethod SignatureVersion SignatureNonce Timestamp Signature`) or a known action's required one is missing or empty | 400 | `MissingParameter` |
//! | `Version` is not `2014-05-26` | 400 | `InvalidVersion` |
//! | `Format` is not `JSON` (ECS would answer XML) | 400 | `InvalidParameter` |
//! | `SignatureMethod` not `HMAC-SHA1` or `SignatureVersion` not `1.0` | 400 | `IncompleteSignature` |
//! | unknown `AccessKeyId` | 404 | `InvalidAccessKeyId.NotFound` |
//! | wrong `Signature` for the HTTP method used | 400 | `SignatureDoesNotMatch` (message ends with the server's string to sign) |
//! | STS account: `SecurityToken` missing or different | 400 | `InvalidSecurityToken.Mismatch` |
//! | `SecurityToken` sent for an account without one | 400 | `InvalidSecurityToken.Malformed` |
//! | `Timestamp` not `yyyy-MM-ddTHH:mm:ssZ` | 400 | `InvalidTimeStamp.Format` |
//! | `Timestamp` more than 15 min from the server clock | 400 | `InvalidTimeStamp.Expired` |
//! | `SignatureNonce` already used by this AccessKeyId in the last 15 min | 400 | `SignatureNonceUsed` |
//! | unknown `Action` (case-sensitive) | 404 | `InvalidAction.NotFound` |
//! | account quota set and used up for this `AccessKeyId` and `RegionId` | 400 | `Throttling.User` |
//!
//! The account quota (ECS's flow control; off unless set with [`SimHandle::set_account_quota`],
//! `POST /_sim/quota` or `ecs-sim --account-qps-per-region`) allows N requests per second per
//! AccessKeyId and region across all actions: a token bucket that holds one second's worth, so a
//! burst of N passes at once, then one every 1/N s; a refused request takes no token. Then queued
//! faults (below) apply, then the action. Path other than `/`: 404
//! `InvalidPath.NotFound`; other methods: 405 `UnsupportedHTTPMethod`; a body over 1 MiB: 413
//! `RequestEntityTooLarge`.
//!
//! `DescribeInstanceVncUrl(RegionId, InstanceId)`: `{"RequestId","VncUrl"}`, or
//! `InvalidRegionId.NotFound` 404, `InvalidInstanceId.NotFound` 404, `InvalidRegionInstance` 400,
//! `IncorrectInstanceStatus` 403 (Stopped), `InstanceNotReady` 403 (Starting), `Throttling.User` 400
//! (more than `reconnectLimitPerMinute` successes for the instance in the last 60 s).
//!
//! `DescribeInstances(RegionId, [InstanceIds], [PageNumber], [PageSize])`:
//! `{"RequestId","TotalCount","PageNumber","PageSize","Instances":{"Instance":[{"InstanceId",
//! "InstanceName","RegionId","Status","OSType"}]}}`; `InvalidInstanceIds.Malformed` 400 unless
//! `InstanceIds` is a JSON array of at most 100 strings.
//!
//! # STS: `AssumeRoleWithOIDC` (keyless access)
//! Any request with `Action=AssumeRoleWithOIDC` goes to the STS side, configured by a
//! [`KeylessConfig`] ([`start_with_keyless`]; `oidc`, `roles`, `stsLifetimeSeconds`,
//! `metadataRoles` in the config file; `ecs-sim --oidc-provider-arn ARN --oidc-public-key FILE
//! [--oidc-issuer URL] --role ARN=SUBJECT[,…] [--role-instances ARN=ID[,…]] [--sts-lifetime 30s]`).
//! Parameters in the query and/or a form body as above; no AccessKeyId, no signature: the
//! ServiceAccount token is the proof. Required: `Version` (`2015-04-01`), `Format` (`JSON`),
//! `Timestamp`, `RoleArn`, `OIDCProviderArn`, `OIDCToken`, `RoleSessionName`; optional
//! `DurationSeconds` (900 to 43200; the lifetime granted is the smaller of it and
//! `stsLifetimeSeconds`, default 3600). The token must be a compact JWS with `alg` `RS256` (no
//! `none`, no `HS256`) verified by a key of the configured file (PEM `PUBLIC KEY` such as the
//! cluster's `pki/sa.pub`, PEM `RSA PUBLIC KEY`, or a JWKS; a JWKS key with another `kid` is not
//! tried), `iss` equal to the configured issuer, `exp` not passed and `nbf`/`iat` not in the
//! future (60 s leeway each), `aud` (string or list) containing `sts.aliyuncs.com`, and `sub` in
//! the role's `subjects`. 200: `{"RequestId","AssumedRoleUser":{"Arn","AssumedRoleId"},
//! "OIDCTokenInfo":{"Subject","Issuer","ClientIds"},"Credentials":{"AccessKeyId","AccessKeySecret",
//! "SecurityToken","Expiration"}}`; errors have the ECS shape with `HostId` `sts.aliyuncs.com`.
//! Checks, in order:
//!
//! | check | status | `Code` |
//! |---|---|---|
//! | `Version`, `Format` or `Timestamp` missing; `RoleArn`, `OIDCProviderArn` or `RoleSessionName` missing or empty | 400 | `MissingParameter` |
//! | `Version` is not `2015-04-01` | 400 | `InvalidVersion` |
//! | `Format` is not `JSON` | 400 | `InvalidParameter` |
//! | `Timestamp` malformed / more than 15 min off | 400 | `InvalidTimeStamp.Format` / `InvalidTimeStamp.Expired` |
//! | `OIDCToken` missing or empty | 401 | `AuthenticationFail.OIDCToken.Invalid` ("The OIDCToken can not empty.") |
//! | `RoleSessionName` not 2 to 64 of `[A-Za-z0-9.@_-]` | 400 | `InvalidParameter.RoleSessionName` |
//! | `DurationSeconds` not an integer from 900 to 43200 | 400 | `InvalidParameter.DurationSeconds` |
//! | `RoleArn` not `acs:ram::<uid>:role/<name>` | 400 | `InvalidParameter.RoleArn` |
//! | `OIDCProviderArn` is not the configured provider (or none is configured) | 401 | `AuthenticationFail.NoPermission` ("No such OIDC Provider registered.") |
//! | no such role | 404 | `EntityNotExist.Role` |
//! | token over 16 KiB, not three base64url parts, header or claims not JSON objects, no `iss`/`sub`/`exp`, `crit` present, `alg` not `RS256`, `nbf`/`iat` in the future | 401 | `AuthenticationFail.OIDCToken.Invalid` |
//! | signature does not verify with any key | 401 | `AuthenticationFail.OIDCToken.InvalidSignature` |
//! | `iss` is not the configured issuer | 401 | `AuthenticationFail.OIDCToken.IssuerNotMatch` |
//! | `exp` passed | 401 | `AuthenticationFail.OIDCToken.Expired` |
//! | `aud` lacks `sts.aliyuncs.com` | 401 | `AuthenticationFail.OIDCToken.AudienceNotMatch` |
//! | `sub` not trusted by the role | 401 | `AuthenticationFail.NoPermission` ("There is no permission") |
//!
//! Issued credentials (`AccessKeyId` `STS.…`, random secret, a base64 `SecurityToken` with `+`
//! and `/`) are accounts of the ECS side until `Expiration` (whole seconds); from then on a
//! request signed with them answers 400 `InvalidSecurityToken.Expired` (after the signature and
//! token checks). A role with `instances` limits them: `DescribeInstanceVncUrl` for another
//! instance, or `DescribeInstances` without `InstanceIds` or naming another instance, is 403
//! `Forbidden.RAM`. At most [`MAX_GRANTS`] credentials are remembered; each is forgotten
//! [`KEEP_EXPIRED`] after it expires (then `InvalidAccessKeyId.NotFound`), and a full table drops
//! the one expiring first. Faults apply to STS answers only when their `action` names
//! `AssumeRoleWithOIDC`. Stats count these calls under `AssumeRoleWithOIDC` by code.
//!
//! # Instance metadata (IMDSv2 only)
//! `PUT /latest/api/token` with `X-aliyun-ecs-metadata-token-ttl-seconds: 1..21600` → the token
//! (text); 400 without a valid TTL, 403 with `X-Forwarded-For`. With header
//! `X-aliyun-ecs-metadata-token`: `GET /latest/meta-data/ram/security-credentials/` → the role
//! names, one per line; `GET …/<name>` → `{"AccessKeyId","AccessKeySecret","SecurityToken",
//! "Expiration","LastUpdated","Code":"Success"}`, the same credentials until half their lifetime
//! (`stsLifetimeSeconds`) is used. No or an unknown/expired token: 401; unknown role (or no role
//! at all for the listing): 404; wrong method: 405. Roles come from `metadataRoles` or
//! `ecs-sim --metadata-role NAME[=ID,…]`. Stats count `Metadata.Token` and
//! `Metadata.SecurityCredentials` with codes `Success`, `BadRequest`, `Unauthorized`,
//! `Forbidden`, `NotFound`, `MethodNotAllowed`.
//!
//! # Admin API (same port, no signature, not counted in stats)
//! - `GET /_sim/stats` → `{"calls":{"<Action>":{"<Code>":n}},"byInstance":{"<id>":{"<Action>":n}},
//!   "byAccount":{"<AccessKeyId>":{"<RegionId>":{"calls":n,"throttled":n}}}, "lastVncUrlMs":{…}}`
//!   (`Success` is the code of a 200; `-` is the action of a request whose `Action` was unreadable;
//!   `byAccount`, left out while empty, counts requests that reached the account quota and those
//!   it refused).
//! - `POST /_sim/faults` with a [`Fault`]: `{"action"?, "instanceId"?, "count"? (default 1), "kind":
//!   …}` where the kind's fields sit beside it: `{"kind":"internalError"}`,
//!   `{"kind":"serviceUnavailable"}`, `{"kind":"throttling"}`,
//!   `{"kind":"error","status":403,"code":"Forbidden.RAM","message":"…"}`,
//!   `{"kind":"delay","ms":2000}`, `{"kind":"malformed"}`, `{"kind":"oversized"}`, `{"kind":"drop"}`.
//!   Answers 200 with the fault as stored. Faults queue in order; each takes over the next `count`
//!   matching answers of well-signed requests. Stats codes: the error's code, or `Fault.Malformed`,
//!   `Fault.Oversized`, `Fault.Drop`; a delayed answer counts under its own code.
//! - `POST /_sim/reset` → `{"reset":true}`: clears stats, faults, used nonces, reconnect windows,
//!   refills the account quota (instance statuses and the quota's setting stay).
//! - `GET /_sim/quota`, `POST /_sim/quota` with `{"accountQpsPerRegion": n}` (`null` or 0: off) →
//!   `{"accountQpsPerRegion": n|null}`.
//! - `POST /_sim/instances/<id>/status` with `{"status":"Stopped"}` (`Running`, `Stopped`,
//!   `Starting`) → `{"instanceId","status"}`, 404 for an unknown instance.
//!
//! Admin errors are `{"error":"…"}` with 400, 404 or 405.

mod actions;
mod admin;
mod answer;
mod config;
mod errors;
mod faults;
mod grants;
mod http;
mod keys;
mod metadata;
mod metadata_state;
mod oidc;
mod params;
mod quota;
mod roles;
mod rpc;
mod server;
mod state;
mod stats;
mod sts;
mod verify;
mod windows;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use answer::OVERSIZED_BODY;
pub use config::{
    DEFAULT_RECONNECT_LIMIT_PER_MINUTE, DEFAULT_STS_LIFETIME_SECONDS, DEFAULT_VNC_PROXY_HOST,
    InstanceStatus, KeylessConfig, MAX_STS_LIFETIME_SECONDS, MetadataRole, OidcProvider,
    RoleInstances, SimAccount, SimConfig, SimError, SimInstance, SimRole, load_config_file,
};
pub use errors::HOST_ID;
pub use faults::{Fault, FaultKind};
pub use grants::{KEEP_EXPIRED, MAX_GRANTS};
pub use http::MAX_REQUEST_BODY;
pub use metadata::{
    CREDENTIALS_PATH, MAX_TOKEN_TTL_SECONDS, STATS_CREDENTIALS, STATS_TOKEN, TOKEN_HEADER,
    TOKEN_PATH, TTL_HEADER,
};
pub use oidc::STS_AUDIENCE;
pub use rpc::NO_ACTION;
pub use stats::{AccountCount, SimStats};
pub use sts::{STS_ACTION, STS_HOST_ID, STS_VERSION};
pub use verify::API_VERSION;

/// Binds `listen` (port 0 picks a free one) and serves `config` until the handle is shut down or
/// dropped. An invalid config is `InvalidInput`. No STS provider and no metadata roles.
pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
    start_with_keyless(config, KeylessConfig::default(), listen).await
}

/// [`start`], with the STS side and the metadata roles of `keyless`. Its public key file is read
/// here; an unreadable or unusable one is `InvalidInput` too.
pub async fn start_with_keyless(
    config: SimConfig,
    keyless: KeylessConfig,
    listen: SocketAddr,
) -> std::io::Result<SimHandle> {
    let invalid = |message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    config.validate().map_err(invalid)?;
    let keyless = roles::Keyless::load(&keyless).map_err(invalid)?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(state::Shared::with_keyless(config, keyless));
    let task = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
    tracing::info!(%addr, "ecs-sim serving");
    Ok(SimHandle {
        addr,
        shared,
        task: Some(task),
    })
}

/// A running simulator. Dropping it stops the server and closes its connections.
#[derive(Debug)]
pub struct SimHandle {
    pub addr: SocketAddr,
    shared: Arc<state::Shared>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://IP:PORT`, for a client's endpoint override.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn inject(&self, fault: Fault) {
        self.shared.inject(fault);
    }

    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Injected faults not yet used up (a delayed request counts as used once it has arrived).
    pub fn queued_faults(&self) -> usize {
        self.shared.queued_faults()
    }

    /// Clears stats, faults, used nonces and reconnect windows and refills the account quota;
    /// instance statuses and the quota's setting stay.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// ECS's account flow control: at most `per_second` requests per second per AccessKeyId and
    /// region, `Throttling.User` beyond it; `None` or 0 turns it off (the default).
    pub fn set_account_quota(&self, per_second: Option<u32>) {
        self.shared.set_account_quota(per_second);
    }

    pub fn account_quota(&self) -> Option<u32> {
        self.shared.account_quota()
    }

    /// Unknown instance ids are ignored.
    pub fn set_instance_status(&self, instance_id: &str, status: InstanceStatus) {
        if !self.shared.set_instance_status(instance_id, status) {
            tracing::warn!(instance_id, "set_instance_status: unknown instance");
        }
    }

    /// Stops accepting and closes open connections; returns once the listener is closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
