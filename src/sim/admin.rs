//! The unsigned admin API under `/_sim/` (loopback tooling; see the module docs for the shapes).

use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request};
use serde::Deserialize;
use serde_json::json;

use crate::aliyun::signature::percent_decode;

use super::config::InstanceStatus;
use super::faults::Fault;
use super::http::{Reply, json_response, read_body};
use super::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: InstanceStatus,
}

/// `{"accountQpsPerRegion": n}`; `null` or 0 turns the quota off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct QuotaChange {
    account_qps_per_region: Option<u32>,
}

pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_start_matches("/_sim/");
    let segments: Vec<&str> = path.split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::GET, ["stats"]) => {
            let stats = shared.lock().stats.clone();
            ok(serde_json::to_value(stats).unwrap_or_default())
        }
        (&Method::POST, ["faults"]) => {
            let fault: Fault = match read_json(body, &parts.headers).await {
                Ok(fault) => fault,
                Err(reply) => return reply,
            };
            if let Err(message) = fault.validate() {
                return error(400, &message);
            }
            let echo = serde_json::to_value(&fault).unwrap_or_default();
            shared.inject(fault);
            ok(echo)
        }
        (&Method::POST, ["reset"]) => {
            shared.reset();
            ok(json!({ "reset": true }))
        }
        (&Method::GET, ["quota"]) => ok(json!({ "accountQpsPerRegion": shared.account_quota() })),
        (&Method::POST, ["quota"]) => {
            let change: QuotaChange = match read_json(body, &parts.headers).await {
                Ok(change) => change,
                Err(reply) => return reply,
            };
            shared.set_account_quota(change.account_qps_per_region);
            ok(json!({ "accountQpsPerRegion": shared.account_quota() }))
        }
        (&Method::POST, ["instances", raw_id, "status"]) => {
            let Some(instance_id) = percent_decode(raw_id) else {
                return error(
                    400,
                    "the instance id in the path is not valid percent-encoding",
                );
            };
            let change: StatusChange = match read_json(body, &parts.headers).await {
                Ok(change) => change,
                Err(reply) => return reply,
            };
            if shared.set_instance_status(&instance_id, change.status) {
                ok(json!({ "instanceId": instance_id, "status": change.status }))
            } else {
                error(404, &format!("unknown instance {instance_id}"))
            }
        }
        (_, ["stats" | "faults" | "reset" | "quota"] | ["instances", _, "status"]) => {
            error(405, "method not allowed")
        }
        _ => error(404, "no such admin endpoint"),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    body: Incoming,
    headers: &hyper::HeaderMap,
) -> Result<T, Reply> {
    let bytes = read_body(body, headers)
        .await
        .map_err(|e| error(e.status, &e.message))?;
    serde_json::from_slice(&bytes).map_err(|e| error(400, &format!("invalid JSON body: {e}")))
}

fn ok(value: serde_json::Value) -> Reply {
    json_response(200, Bytes::from(value.to_string()))
}

fn error(status: u16, message: &str) -> Reply {
    json_response(status, Bytes::from(json!({ "error": message }).to_string()))
}
