//! What the operator really asks of the API server, read from the kube-apiserver's own audit log
//! (scripts/local-cluster.sh writes one at level Metadata): its RBAC must be exactly that set, and
//! a refresh must cost what the README says. Its own control plane (one test per binary), so the
//! log holds this run only. Run with `scripts/test.sh`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ecs_vnc_operator::sim::{Fault, FaultKind};
use serde::Deserialize;
use serde_json::{Value, json};
use support::ecs_sim::{SIM_KEY_ID, SIM_KEY_SECRET, VNC};
use support::env::Env;
use support::paths::root;
use support::session_wait::WAIT;
use support::shared_cluster::OPERATOR_NS;
const OPERATOR_USER: &str = "system:serviceaccount:ecs-vnc-system:ecs-vnc-operator";

/// (apiGroup, resource[/subresource], verb)
type Permission = (String, String, String);

/// The operator's completed requests in the audit log, from line `from` on.
fn operator_requests(log: &std::path::Path, from: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("read the audit log {}: {e}", log.display()));
    text.lines()
        .skip(from)
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["user"]["username"] == OPERATOR_USER && e["stage"] == "ResponseComplete")
        .collect()
}

fn lines(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn permission(event: &Value) -> Permission {
    let r = &event["objectRef"];
    let resource = match r["subresource"].as_str() {
        Some(sub) => format!("{}/{sub}", r["resource"].as_str().unwrap_or_default()),
        None => r["resource"].as_str().unwrap_or_default().to_owned(),
    };
    (
        r["apiGroup"].as_str().unwrap_or_default().to_owned(),
        resource,
        event["verb"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Every (group, resource, verb) the roles of `deploy/rbac.yaml` grant.
fn granted() -> BTreeSet<Permission> {
    let path = root().join("deploy/rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = BTreeSet::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc = Value::deserialize(doc).unwrap();
        if !matches!(doc["kind"].as_str(), Some("ClusterRole" | "Role")) {
            continue;
        }
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for group in rule["apiGroups"].as_array().into_iter().flatten() {
                for resource in rule["resources"].as_array().into_iter().flatten() {
                    for verb in rule["verbs"].as_array().into_iter().flatten() {
                        out.insert((
                            group.as_str().unwrap().to_owned(),
                            resource.as_str().unwrap().to_owned(),
                            verb.as_str().unwrap().to_owned(),
                        ));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn the_operators_rbac_is_exactly_what_the_audit_log_shows_it_uses() {
    let env = Env::new("audit").await;
    let log = env.cluster().audit_log();
    let mut op = env.operator(&["--leader-elect"]);

    // A missing Secret, then created: the Secret is read.
    env.kubectl_ok(&["-n", &env.ns, "delete", "secret", "ecs-credentials"]);
    env.apply_ok(&env.session("web-1", json!({"isWindows": false})));
    env.wait_phase("web-1", "Failed", WAIT).await;
    env.create_secret("ecs-credentials", SIM_KEY_ID, SIM_KEY_SECRET);
    env.wait_phase("web-1", "Ready", WAIT).await;

    // A change while the ECS call runs: the outcome is written onto the newer object (a read)
    // and no second URL is issued.
    let before = env.sim.stats().total(VNC);
    env.sim.inject(Fault {
        action: Some(VNC.into()),
        instance_id: None,
        kind: FaultKind::Delay(Duration::from_secs(2)),
        count: 1,
    });
    env.request_refresh("web-1", "during").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    env.kubectl_ok(&["-n", &env.ns, "label", "vncsession", "web-1", "touched=yes"]);
    let served = env.refresh_and_wait("web-1", "during", WAIT).await;
    assert_eq!(
        served.status.unwrap().phase.map(|p| p.as_str()),
        Some("Ready")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.sim.stats().total(VNC) - before,
        1,
        "one URL for one request, though the session changed during the call"
    );

    // Refreshes at rest: with the Secret known unchanged, each costs the status patch and the
    // Event, nothing else (a repeated Event note is a patch of the same Event).
    let from = lines(&log);
    for value in ["r1", "r2", "r3", "r4"] {
        env.refresh_and_wait("web-1", value, WAIT).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refresh_requests: Vec<Permission> = operator_requests(&log, from)
        .iter()
        .map(permission)
        .filter(|(group, _, _)| group != "coordination.k8s.io")
        .collect();
    assert!(
        refresh_requests.len() <= 2 * 4,
        "at most 2 API requests per refresh, got {}: {refresh_requests:?}",
        refresh_requests.len()
    );

    // Stop (the Lease is handed back), then compare.
    assert!(op.terminate().success(), "{}", op.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requests = operator_requests(&log, 0);
    let refused: Vec<&Value> = requests
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 403)
        .collect();
    assert!(refused.is_empty(), "requests refused by RBAC: {refused:#?}");
    let used: BTreeSet<Permission> = requests.iter().map(permission).collect();
    let granted = granted();
    let unused: Vec<&Permission> = granted.difference(&used).collect();
    let ungranted: Vec<&Permission> = used.difference(&granted).collect();
    assert!(
        unused.is_empty() && ungranted.is_empty(),
        "deploy/rbac.yaml grants what the operator never used: {unused:?}\n\
         the operator used what is not granted: {ungranted:?}\nused: {used:#?}"
    );
    // The Lease lives in the operator's own namespace only.
    assert!(
        requests
            .iter()
            .filter(|e| e["objectRef"]["resource"] == "leases")
            .all(|e| e["objectRef"]["namespace"] == OPERATOR_NS)
    );
}
