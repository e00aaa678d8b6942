//! The CRD on Kubernetes 1.36 API machinery: the hybrid control plane of
//! `ECSVNC_CRD_SERVER=1.36 scripts/local-cluster.sh up`, in which `ecsvnc.dev` is served by the
//! Kubernetes 1.36 apiextensions-apiserver aggregated behind kube-apiserver 1.20.
//!
//! These tests always start the hybrid (whatever `ECSVNC_CRD_SERVER` says) and check the
//! hybrid itself: who serves the group, kubectl through the aggregator, and the CRD's CEL
//! `x-kubernetes-validations` rules refusing bad manifests naming the field. The operator on
//! the hybrid (SSA status writes, watches, refresh, expiry, `kubectl vnc`) is covered by running
//! tests/e2e.rs and tests/plugin.rs with `ECSVNC_CRD_SERVER=1.36` (scripts/test.sh does).
//!
//! Needs `scripts/local-cluster.sh build` (both control planes); run with `scripts/test.sh` or
//! `cargo test --test e2e_crd_server -- --include-ignored`.

mod support;

use std::process::Output;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{CRD_SERVER_VERSION, Cluster, describe as text};
use support::ecs_sim::LINUX;
use support::paths::{example, root};

const E2E: &str = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh";

/// One hybrid per test binary. A static is never dropped: the script's watchdog tears it down
/// once this process is gone.
fn hybrid() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start_with(Some(CRD_SERVER_VERSION)))
}

fn kubectl_ok(args: &[&str]) -> String {
    let out = hybrid().kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_json(args: &[&str]) -> Value {
    let stdout = kubectl_ok(args);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("kubectl {args:?}: not JSON ({e}): {stdout}"))
}

/// kubectl straight at the 1.36 server (admin token, CA of the cluster), bypassing the
/// aggregator.
fn crd_server_json(path: &str) -> Value {
    let url = hybrid()
        .crd_server_url()
        .expect("the hybrid has a CRD server URL");
    kubectl_json(&["--server", url, "get", "--raw", path])
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace for one test.
fn namespace(hint: &str) -> String {
    let ns = format!(
        "crd{}-{hint}-{}-{}",
        CRD_SERVER_VERSION.replace('.', ""),
        std::process::id() % 10_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    kubectl_ok(&["create", "namespace", &ns]);
    ns
}

/// `kubectl apply` of one manifest (written to a file in the cluster's state directory).
fn apply(ns: &str, manifest: &Value) -> Output {
    let name = manifest["metadata"]["name"].as_str().unwrap_or("manifest");
    let path = hybrid().dir.join(format!(
        "manifest-{ns}-{name}-{}.json",
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, manifest.to_string()).unwrap();
    hybrid().kubectl(&["-n", ns, "apply", "-f", path.to_str().unwrap()])
}

fn session(name: &str, extra: Value) -> Value {
    let mut spec = json!({
        "regionId": "cn-hangzhou", "instanceId": LINUX, "reason": "1.36 e2e",
    });
    for (k, v) in extra.as_object().expect("extra spec fields") {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
           "metadata": {"name": name}, "spec": spec})
}

fn assert_accepted(ns: &str, manifest: &Value) {
    let out = apply(ns, manifest);
    assert!(
        out.status.success(),
        "the 1.36 server refused a valid manifest {manifest}\n{}",
        text(&out)
    );
}

/// Applies `manifest` and asserts it is refused by validation naming `field`.
fn assert_refused_naming(ns: &str, manifest: &Value, field: &str) -> String {
    let out = apply(ns, manifest);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{manifest} was accepted; the CRD in crds/vncsession.yaml needs the x-kubernetes-validations \
         rule that refuses it\n{}",
        text(&out)
    );
    assert!(
        stderr.contains("is invalid") && stderr.contains(field),
        "refusal of {manifest} does not name {field}\n{}",
        text(&out)
    );
    assert!(
        !stderr.contains("unknown field"),
        "refused for an unknown field, not by the rule: is the field in the CRD yet?\n{}",
        text(&out)
    );
    stderr
}

/// [`assert_refused_naming`], and one of the refusals naming `field` is an
/// `x-kubernetes-validations` rule's, not only the OpenAPI schema's (whose messages say "in body").
fn assert_refused_by_rule(ns: &str, manifest: &Value, field: &str) {
    let stderr = assert_refused_naming(ns, manifest, field);
    assert!(
        stderr
            .lines()
            .any(|line| line.contains(field) && !line.contains("in body")),
        "{manifest} is refused by the schema only, not by an x-kubernetes-validations rule \
         naming {field} (crds/vncsession.yaml needs the rule):\n{stderr}"
    );
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn ecsvnc_dev_is_served_by_the_1_36_apiextensions_apiserver_through_the_aggregator() {
    let _ = E2E;
    let cluster = hybrid();
    assert_eq!(cluster.crd_server(), Some(CRD_SERVER_VERSION));
    let url = cluster.crd_server_url().unwrap().to_owned();
    let (host, port) = url
        .strip_prefix("https://")
        .and_then(|hp| hp.rsplit_once(':'))
        .unwrap_or_else(|| panic!("bad CRD server URL {url}"));

    // The front door is kube-apiserver 1.20 ...
    let front = kubectl_json(&["get", "--raw", "/version"]);
    assert_eq!(front["gitVersion"], "v1.20.2", "{front}");
    // ... and the server behind it is 1.36.
    let back = crd_server_json("/version");
    assert_eq!(back["major"], "1", "{back}");
    assert_eq!(back["minor"], "36", "{back}");
    assert!(
        back["gitVersion"]
            .as_str()
            .unwrap_or("")
            .starts_with("v1.36."),
        "{back}"
    );

    // The group is routed to it: APIService -> ExternalName Service -> its loopback address.
    let apiservice = kubectl_json(&["get", "apiservice", "v1alpha1.ecsvnc.dev", "-o", "json"]);
    assert_eq!(
        condition(&apiservice, "Available").as_deref(),
        Some("True"),
        "{apiservice:#}"
    );
    let svc = &apiservice["spec"]["service"];
    assert_eq!(svc["port"].to_string(), port, "{apiservice:#}");
    let (svc_ns, svc_name) = (
        svc["namespace"].as_str().unwrap(),
        svc["name"].as_str().unwrap(),
    );
    let service = kubectl_json(&["-n", svc_ns, "get", "service", svc_name, "-o", "json"]);
    assert_eq!(service["spec"]["type"], "ExternalName", "{service:#}");
    assert_eq!(service["spec"]["externalName"], host, "{service:#}");

    // The CRD lives on the 1.36 server only: no second copy in kube-apiserver 1.20.
    let out = cluster.kubectl(&["get", "crd", "vncsessions.ecsvnc.dev"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "kube-apiserver 1.20 has a CRD vncsessions.ecsvnc.dev of its own\n{}",
        text(&out)
    );
    let crd = crd_server_json(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/vncsessions.ecsvnc.dev",
    );
    assert_eq!(
        condition(&crd, "Established").as_deref(),
        Some("True"),
        "{crd:#}"
    );
    assert_eq!(crd["spec"]["names"]["kind"], "VncSession");
    // It was installed from crds/vncsession.yaml (or $ECSVNC_CRD_FILE), CEL rules and all (1.20
    // would prune them).
    let path = std::env::var_os("ECSVNC_CRD_FILE")
        .map_or_else(|| root().join("crds/vncsession.yaml"), Into::into);
    let file = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        crd.to_string()
            .matches("\"x-kubernetes-validations\"")
            .count(),
        file.matches("x-kubernetes-validations:").count(),
        "the served CRD does not carry the rules of {}",
        path.display()
    );

    // Discovery through kube-apiserver shows the resource as the 1.36 server defines it.
    let resources = kubectl_ok(&["api-resources", "--api-group=ecsvnc.dev", "-o", "wide"]);
    assert!(
        resources.contains("vncsessions")
            && resources.contains("VncSession")
            && resources.contains("ecsvnc"),
        "{resources}"
    );
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn kubectl_gets_vncsessions_and_namespace_deletion_removes_them() {
    let ns = namespace("get");
    let example = example("vncsession.yaml");
    kubectl_ok(&["-n", &ns, "apply", "-f", example.to_str().unwrap()]);

    let table = kubectl_ok(&["-n", &ns, "get", "vncsessions"]);
    let header = table.lines().next().unwrap_or("");
    for column in ["NAME", "INSTANCE", "REGION", "PHASE", "AGE"] {
        assert!(
            header.contains(column),
            "no printer column {column}:\n{table}"
        );
    }
    assert!(
        table.contains("web-1-console") && table.contains(LINUX),
        "{table}"
    );
    // Short name and category, both from the 1.36 server's discovery.
    assert_eq!(
        kubectl_ok(&["-n", &ns, "get", "vnc", "-o", "name"]).trim(),
        "vncsession.ecsvnc.dev/web-1-console"
    );
    assert_eq!(
        kubectl_ok(&["-n", &ns, "get", "ecsvnc", "-o", "name"]).trim(),
        "vncsession.ecsvnc.dev/web-1-console"
    );
    let all = kubectl_json(&["get", "vncsessions", "--all-namespaces", "-o", "json"]);
    assert!(
        all["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metadata"]["namespace"] == ns.as_str()),
        "{all:#}"
    );
    // The status subresource, through the aggregator.
    kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "vncsession",
        "web-1-console",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Pending"}}"#,
    ]);
    assert_eq!(
        kubectl_ok(&[
            "-n",
            &ns,
            "get",
            "vncsession",
            "web-1-console",
            "-o",
            "jsonpath={.status.phase}"
        ]),
        "Pending"
    );

    // The namespace controller (kube-controller-manager 1.20) finds the aggregated resource
    // and deletes the session on the 1.36 server before the namespace goes.
    kubectl_ok(&["delete", "namespace", &ns, "--timeout=90s"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = crd_server_json(&format!(
            "/apis/ecsvnc.dev/v1alpha1/namespaces/{ns}/vncsessions"
        ));
        if left["items"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions left on the 1.36 server: {left:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn cel_rule_refuses_both_credentials_ref_and_service_account_ref_naming_the_field() {
    let ns = namespace("cel-creds");
    let both = |name: &str| {
        let refs = json!({"credentialsRef": {"name": "ecs-credentials"},
                          "serviceAccountRef": {"name": "ecs-vnc-keyless"}});
        session(name, refs)
    };
    assert_refused_by_rule(&ns, &both("both"), "spec.serviceAccountRef");
    // Either one alone is fine, and so is neither.
    assert_accepted(
        &ns,
        &session(
            "secret",
            json!({"credentialsRef": {"name": "ecs-credentials"}}),
        ),
    );
    assert_accepted(
        &ns,
        &session(
            "keyless",
            json!({"serviceAccountRef": {"name": "ecs-vnc-keyless"}}),
        ),
    );
    assert_accepted(&ns, &session("operator", json!({})));
    // And an update that adds the second reference is refused too.
    assert_refused_by_rule(&ns, &both("secret"), "spec.serviceAccountRef");
    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn cel_rule_refuses_an_endpoint_with_userinfo_naming_the_field() {
    let ns = namespace("cel-endpoint");
    // Refused with or without a password, by the rule (and, where it has one, the field's
    // pattern): both name the field.
    for (i, endpoint) in [
        "https://ak:secret-value@ecs-vpc.cn-hangzhou.aliyuncs.com",
        "https://ak@ecs-vpc.cn-hangzhou.aliyuncs.com",
        "http://ak:secret-value@127.0.0.1:8080/",
    ]
    .into_iter()
    .enumerate()
    {
        assert_refused_by_rule(
            &ns,
            &session(&format!("userinfo-{i}"), json!({"endpoint": endpoint})),
            "spec.endpoint",
        );
    }
    assert_accepted(
        &ns,
        &session(
            "vpc",
            json!({"endpoint": "https://ecs-vpc.cn-hangzhou.aliyuncs.com"}),
        ),
    );
    assert_accepted(
        &ns,
        &session("sim", json!({"endpoint": "http://127.0.0.1:8080/"})),
    );
    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn openapi_schema_refusals_name_the_field_through_the_aggregator() {
    let ns = namespace("schema");
    assert_refused_naming(
        &ns,
        &session("bad-id", json!({"instanceId": "web-1"})),
        "spec.instanceId",
    );
    assert_refused_naming(&ns, &session("bad-ttl", json!({"ttl": "soon"})), "spec.ttl");
    // Strict field validation (1.20 has none): a misspelt field is an error, not silently dropped.
    let out = apply(&ns, &session("typo", json!({"isWindow": true})));
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.isWindow\""),
        "{}",
        text(&out)
    );
    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}

#[test]
#[ignore = "end-to-end: needs the local control plane (hybrid); run scripts/test.sh"]
fn the_audit_log_records_requests_to_the_aggregated_group() {
    let ns = namespace("audit");
    kubectl_ok(&["-n", &ns, "get", "vncsessions"]);
    let log = std::fs::read_to_string(hybrid().audit_log()).expect("read the audit log");
    let events: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit log line is JSON"))
        .collect();
    let listed = events.iter().any(|e| {
        e["user"]["username"] == "ecsvnc-admin"
            && e["verb"] == "list"
            && e["objectRef"]["apiGroup"] == "ecsvnc.dev"
            && e["objectRef"]["resource"] == "vncsessions"
            && e["objectRef"]["namespace"] == ns.as_str()
            && e["stage"] == "ResponseComplete"
            && e["responseStatus"]["code"] == 200
    });
    assert!(listed, "no audit event for the list of vncsessions in {ns}");
    // The control plane's own reads are left out (the CRD server's delegated reviews too).
    for e in &events {
        let user = e["user"]["username"].as_str().unwrap_or("");
        let verb = e["verb"].as_str().unwrap_or("");
        assert!(
            !(user.starts_with("system:kube-controller-manager")
                || user == "system:ecsvnc-crd-server")
                || !matches!(verb, "get" | "list" | "watch"),
            "a control plane read in the audit log: {e}"
        );
        assert_eq!(e["level"], "Metadata", "{e}");
    }
    kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}
