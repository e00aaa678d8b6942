//! Keyless credentials end to end: ServiceAccount tokens minted by the real kube-apiserver,
//! verified by ecs-sim's STS with the cluster's own signing key (`pki/sa.pub`), exchanged by the
//! operator for short-lived STS credentials. One operator serves every namespace here, so this
//! binary holds a single test. Run with `scripts/test.sh`.

mod support;

use std::time::{Duration, Instant};

use ecs_vnc_operator::aliyun::{AssumeRoleWithOidc, Endpoint, StsClient, StsOptions};
use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::sim::{
    self, Fault, FaultKind, InstanceStatus, KeylessConfig, OidcProvider, SimConfig, SimHandle,
    SimInstance, SimRole,
};
use serde_json::{Value, json};
use support::harness::{Env, LINUX, OPERATOR_NS, WINDOWS};

const WAIT: Duration = Duration::from_secs(30);
const ACCOUNT: &str = "1234567890123456";
const ISSUER: &str = "https://kubernetes.default.svc";
/// Instances only the untrusted ServiceAccount and the operator's own role ask for.
const UNTRUSTED_TARGET: &str = "i-bp1untrusted0000001";
const OPERATOR_TARGET: &str = "i-bp1operatorrole0001";
/// Issued STS credentials live this long, so renewals happen while the test watches.
const STS_LIFETIME_SECONDS: u64 = 8;

fn provider() -> String {
    format!("acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-e2e")
}

fn role(name: &str) -> String {
    format!("acs:ram::{ACCOUNT}:role/{name}")
}

fn subject(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

fn instance(id: &str) -> SimInstance {
    SimInstance {
        instance_id: id.to_owned(),
        region_id: "cn-hangzhou".to_owned(),
        status: InstanceStatus::Running,
        os_type: "linux".to_owned(),
    }
}

/// ecs-sim with STS: role `team-a` trusts `a/opener` for the Linux instance only, role `team-b`
/// trusts `b/opener` for the Windows one only, role `operator` trusts the operator's own
/// ServiceAccount for everything.
async fn keyless_sim(env: &Env, a: &str, b: &str) -> SimHandle {
    let mut config = SimConfig::demo();
    config.instances.push(instance(UNTRUSTED_TARGET));
    config.instances.push(instance(OPERATOR_TARGET));
    let keyless = KeylessConfig {
        oidc: Some(OidcProvider {
            issuer: ISSUER.to_owned(),
            provider_arn: provider(),
            public_key_file: env.cluster().dir.join("pki/sa.pub"),
        }),
        roles: vec![
            SimRole {
                arn: role("team-a"),
                subjects: vec![subject(a, "opener")],
                instances: Some(vec![LINUX.to_owned(), UNTRUSTED_TARGET.to_owned()]),
            },
            SimRole {
                arn: role("team-b"),
                subjects: vec![subject(b, "opener")],
                instances: Some(vec![WINDOWS.to_owned()]),
            },
            SimRole {
                arn: role("operator"),
                subjects: vec![subject(OPERATOR_NS, "ecs-vnc-operator")],
                instances: None,
            },
        ],
        sts_lifetime_seconds: STS_LIFETIME_SECONDS,
        metadata_roles: Vec::new(),
    };
    let sim = sim::start_with_keyless(config, keyless, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Turns on per-account counting (never reached at this rate).
    sim.set_account_quota(Some(10_000));
    sim
}

/// A ServiceAccount, annotated with a role unless `role_arn` is `None`.
fn service_account(env: &Env, name: &str, role_arn: Option<&str>) {
    let mut metadata = json!({"name": name, "namespace": env.ns});
    if let Some(arn) = role_arn {
        metadata["annotations"] = json!({"ecsvnc.dev/role-arn": arn});
    }
    env.apply_ok(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}));
}

/// A session that uses `sa` (keyless) for `instance`.
fn keyless_session(env: &Env, name: &str, sa: &str, instance: &str) -> Value {
    let mut session = env.session(name, json!({"instanceId": instance}));
    let spec = session["spec"].as_object_mut().unwrap();
    spec.remove("credentialsRef");
    spec.insert("serviceAccountRef".to_owned(), json!({"name": sa}));
    session
}

/// A token of `ns/sa` for STS, minted by the API server (TokenRequest).
fn mint_token(env: &Env, ns: &str, sa: &str, seconds: u32) -> String {
    let request = env
        .cluster()
        .dir
        .join(format!("token-request-{ns}-{sa}.json"));
    std::fs::write(
        &request,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": ["sts.aliyuncs.com"], "expirationSeconds": seconds}})
        .to_string(),
    )
    .unwrap();
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token");
    let out = env.kubectl_ok(&["create", "--raw", &path, "-f", request.to_str().unwrap()]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    answer["status"]["token"].as_str().unwrap().to_owned()
}

fn last_error(s: &VncSession) -> (String, String) {
    let e = s.status.as_ref().and_then(|st| st.last_error.clone());
    e.map(|e| (e.code, e.message)).unwrap_or_default()
}

fn condition(s: &VncSession, type_: &str) -> String {
    s.status
        .as_ref()
        .and_then(|st| st.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

fn vnc_calls(sim: &SimHandle, instance: &str) -> u64 {
    sim.stats()
        .by_instance
        .get(instance)
        .map(|actions| actions.values().sum())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "end-to-end: needs the local control plane; run scripts/test.sh"]
async fn keyless_sessions_and_the_operators_rrsa_identity() {
    let a = Env::new("keyless-a").await;
    let b = Env::new("keyless-b").await;
    a.cluster().apply_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy/components/keyless/rbac.yaml"),
    );
    let sim = keyless_sim(&a, &a.ns, &b.ns).await;

    // The operator's own identity: a projected-style token file of its ServiceAccount.
    let token_file = a.cluster().dir.join(format!("rrsa-token-{}", a.ns));
    let operator_token = mint_token(&a, OPERATOR_NS, "ecs-vnc-operator", 3600);
    std::fs::write(&token_file, &operator_token).unwrap();
    let endpoint = sim.endpoint();
    let provider = provider();
    let operator_role = role("operator");
    let mut op = a.operator_everywhere(
        &endpoint,
        &[
            "--sts-endpoint",
            &endpoint,
            "--operator-credentials-namespaces",
            &a.ns,
        ],
        &[
            (
                "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
            ("ALIBABA_CLOUD_ROLE_ARN", &operator_role),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", &provider),
            // Its own switch: the operator's RRSA sets the provider, which alone is not enough.
            ("ECS_VNC_KEYLESS_SESSIONS", "true"),
        ],
    );

    // Two namespaces, each with a ServiceAccount named `opener`: each opens only what its own
    // role is trusted for.
    service_account(&a, "opener", Some(&role("team-a")));
    service_account(&b, "opener", Some(&role("team-b")));
    a.apply_ok(&keyless_session(&a, "a-linux", "opener", LINUX));
    b.apply_ok(&keyless_session(&b, "b-windows", "opener", WINDOWS));
    a.apply_ok(&keyless_session(&a, "a-windows", "opener", WINDOWS));
    let ready = a.wait_phase("a-linux", "Ready", WAIT).await;
    assert!(ready.status.unwrap().console_url.is_some());
    b.wait_phase("b-windows", "Ready", WAIT).await;
    let denied = a.wait_phase("a-windows", "Failed", WAIT).await;
    assert_eq!(last_error(&denied).0, "Forbidden.RAM", "{denied:#?}");

    // A ServiceAccount whose token the role does not trust: STS refuses, ECS is never called.
    service_account(&b, "intruder", Some(&role("team-a")));
    b.apply_ok(&keyless_session(
        &b,
        "b-intruder",
        "intruder",
        UNTRUSTED_TARGET,
    ));
    let refused = b.wait_phase("b-intruder", "Failed", WAIT).await;
    let (code, message) = last_error(&refused);
    assert!(code.starts_with("AuthenticationFail"), "{code}: {message}");
    assert!(
        message.contains("STS") && message.contains(&format!("{}/intruder", b.ns)),
        "{message}"
    );
    assert_eq!(condition(&refused, "Stalled"), "True", "a person must act");
    assert_eq!(vnc_calls(&sim, UNTRUSTED_TARGET), 0, "no ECS call at all");

    // Refusals before any exchange, each naming the fix; fixing the ServiceAccount restarts it.
    a.apply_ok(&keyless_session(&a, "a-missing", "nobody", LINUX));
    let missing = a.wait_phase("a-missing", "Failed", WAIT).await;
    let (code, message) = last_error(&missing);
    assert_eq!(code, "CredentialsNotFound");
    assert!(
        message.contains("not found") && message.contains("ecsvnc.dev/role-arn"),
        "{message}"
    );
    service_account(&a, "bare", None);
    a.apply_ok(&keyless_session(&a, "a-bare", "bare", LINUX));
    let bare = a.wait_phase("a-bare", "Failed", WAIT).await;
    assert!(
        last_error(&bare)
            .1
            .contains("no ecsvnc.dev/role-arn annotation"),
        "{bare:#?}"
    );
    a.kubectl_ok(&[
        "-n",
        &a.ns,
        "annotate",
        "serviceaccount",
        "bare",
        "ecsvnc.dev/role-arn=acs:ram::12ab:role/x",
    ]);
    let malformed = a
        .wait_for("a-bare", WAIT, |s| {
            last_error(s).1.contains("must have a numeric account id")
        })
        .await;
    assert_eq!(last_error(&malformed).0, "CredentialsNotFound");
    a.kubectl_ok(&[
        "-n",
        &a.ns,
        "annotate",
        "--overwrite",
        "serviceaccount",
        "bare",
        &format!("ecsvnc.dev/role-arn={}", role("team-a")),
    ]);
    // `bare` is not trusted by team-a's role (only `opener` is): the exchange itself is refused.
    let untrusted = a
        .wait_for("a-bare", WAIT, |s| {
            last_error(s).0.starts_with("AuthenticationFail")
        })
        .await;
    assert!(!untrusted.status.unwrap().refreshable);

    // The operator's own RRSA identity, for a session that names no credentials.
    let mut own = a.session("a-own", json!({"instanceId": OPERATOR_TARGET}));
    own["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialsRef");
    a.apply_ok(&own);
    a.wait_phase("a-own", "Ready", WAIT).await;
    let sts_keys: Vec<String> = sim.stats().by_account.keys().cloned().collect();
    assert!(
        !sts_keys.is_empty() && sts_keys.iter().all(|k| k.starts_with("STS.")),
        "every ECS call was signed with STS credentials: {sts_keys:?}"
    );

    // Refreshes across several STS expiries: every one is served, and credentials are exchanged
    // once per lifetime, not once per URL.
    let exchanges_before = sim.stats().count("AssumeRoleWithOIDC", "Success");
    let started = Instant::now();
    let mut served = 0;
    for n in 0..10 {
        a.refresh_and_wait("a-linux", &format!("r{n}"), WAIT).await;
        served += 1;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    let elapsed = started.elapsed().as_secs();
    let exchanges = sim.stats().count("AssumeRoleWithOIDC", "Success") - exchanges_before;
    let lifetimes = elapsed / STS_LIFETIME_SECONDS;
    assert!(
        lifetimes >= 2,
        "the run must cross several expiries ({elapsed} s)"
    );
    assert!(
        exchanges >= 2 && exchanges <= 2 * (lifetimes + 1) && exchanges < served,
        "{exchanges} exchanges for {served} URLs over {elapsed} s (lifetime {STS_LIFETIME_SECONDS} s)"
    );
    let after = a.wait_phase("a-linux", "Ready", WAIT).await;
    assert_eq!(after.status.unwrap().refresh_count, 10);
    println!(
        "renewal: {served} URLs over {elapsed} s, {exchanges} exchanges (lifetime {STS_LIFETIME_SECONDS} s)"
    );

    // ECS rejects exchanged credentials before they expire (a revoked role session, a clock that
    // ran behind): they are dropped and exchanged again, not treated as a Secret to fix.
    let exchanges_before = sim.stats().count("AssumeRoleWithOIDC", "Success");
    sim.inject(Fault {
        action: Some("DescribeInstanceVncUrl".to_owned()),
        instance_id: Some(LINUX.to_owned()),
        kind: FaultKind::Error {
            status: 400,
            code: "InvalidSecurityToken.Expired".to_owned(),
            message: "Specified SecurityToken is expired.".to_owned(),
        },
        count: 1,
    });
    let rejected = a.refresh_and_wait("a-linux", "after-rejection", WAIT).await;
    let (code, message) = last_error(&rejected);
    assert_eq!(code, "InvalidSecurityToken.Expired");
    assert!(message.contains("exchanged again"), "{message}");
    assert!(
        rejected.status.as_ref().unwrap().refreshable,
        "retried, not stalled"
    );
    a.wait_phase("a-linux", "Ready", WAIT).await;
    assert!(sim.stats().count("AssumeRoleWithOIDC", "Success") > exchanges_before);

    // The operator's own RRSA role is not for namespaces it is not offered to, whatever the
    // role's trust policy says.
    service_account(&b, "borrower", Some(&operator_role));
    b.apply_ok(&keyless_session(
        &b,
        "b-borrower",
        "borrower",
        OPERATOR_TARGET,
    ));
    let borrowed = b.wait_phase("b-borrower", "Failed", WAIT).await;
    let (code, message) = last_error(&borrowed);
    assert_eq!(code, "CredentialsNotFound");
    assert!(message.contains("the operator's own"), "{message}");

    // An STS token in a Secret that has expired: its own failure, terminal until the Secret changes.
    let expired = expired_sts_secret(&a, &sim).await;
    a.kubectl_ok(&[
        "-n",
        &a.ns,
        "create",
        "secret",
        "generic",
        "expired-sts",
        &format!("--from-literal=accessKeyId={}", expired.0),
        &format!("--from-literal=accessKeySecret={}", expired.1),
        &format!("--from-literal=securityToken={}", expired.2),
    ]);
    a.apply_ok(&a.session(
        "a-expired",
        json!({"credentialsRef": {"name": "expired-sts"}}),
    ));
    let failed = a.wait_phase("a-expired", "Failed", WAIT).await;
    let (code, message) = last_error(&failed);
    assert_eq!(code, "InvalidSecurityToken.Expired");
    assert!(
        message.contains("expired") && message.contains("serviceAccountRef"),
        "{message}"
    );
    assert!(!failed.status.as_ref().unwrap().refreshable);
    assert_eq!(condition(&failed, "Stalled"), "True");

    // Nothing secret in the operator's logs: not its token, not an exchanged key.
    op.terminate();
    let logs = op.logs();
    assert!(
        !logs.contains(&operator_token),
        "the OIDC token leaked into the logs"
    );
    assert!(!logs.contains(&expired.1) && !logs.contains(&expired.2));
    for line in logs.lines() {
        assert!(
            !line.contains("eyJ"),
            "something like a JWT in the logs: {line}"
        );
    }
}

/// STS credentials for `a/opener`, exchanged with the sim through the operator's own STS client
/// and left to expire.
async fn expired_sts_secret(a: &Env, sim: &SimHandle) -> (String, String, String) {
    let token = mint_token(a, &a.ns, "opener", 600);
    let request =
        AssumeRoleWithOidc::new(&role("team-a"), &provider(), &token, "e2e-expired").unwrap();
    let issued = StsClient::new(StsOptions::default())
        .unwrap()
        .assume_role_with_oidc(&Endpoint::parse(&sim.endpoint()).unwrap(), &request)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(STS_LIFETIME_SECONDS + 1)).await;
    let c = issued.credentials;
    (
        c.access_key_id().to_owned(),
        c.access_key_secret().to_owned(),
        c.security_token().unwrap().to_owned(),
    )
}
