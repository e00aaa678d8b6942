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
mod config;
mod errors;
mod faults;
mod http;
mod params;
mod quota;
mod server;
mod state;
mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{
    DEFAULT_RECONNECT_LIMIT_PER_MINUTE, DEFAULT_VNC_PROXY_HOST, InstanceStatus, SimAccount,
    SimConfig, SimError, SimInstance,
};
pub use faults::{Fault, FaultKind};
pub use http::MAX_REQUEST_BODY;
pub use server::{NO_ACTION, OVERSIZED_BODY};
pub use state::{AccountCount, SimStats};
pub use verify::API_VERSION;

/// `HostId` in every error answer.
pub const HOST_ID: &str = "ecs.aliyuncs.com";

/// Binds `listen` (port 0 picks a free one) and serves `config` until the handle is shut down or
/// dropped. An invalid config is `InvalidInput`.
pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
    config
        .validate()
        .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(state::Shared::new(config));
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
