//! Keyless credentials end to end: ServiceAccount tokens minted by the real kube-apiserver,
//! verified by ecs-sim's STS with the cluster's own signing key (`pki/sa.pub`), exchanged by the
//! operator for short-lived STS credentials. One operator serves every namespace here, so this
//! binary holds a single test. Run with `scripts/test.sh`.

mod support;

use std::time::{Duration, Instant};

use ecs_vnc_operator::aliyun::{AssumeRoleWithOidc, StsClient, StsOptions};
use ecs_vnc_operator::sim::{
    Fault, FaultKind, InstanceStatus, KeylessConfig, SimConfig, SimHandle, SimInstance, SimRole,
};
use serde_json::json;
use support::ecs_sim::{self, LINUX, VNC, WINDOWS};
use support::env::Env;
use support::paths::root;
use support::rrsa::{
    mint_token, oidc_provider, operator_token_file, operator_trust, operator_vars, provider, role,
    subject,
};
use support::session_status::{assert_stalled, condition, last_error};
use support::session_wait::WAIT;

/// Instances only the untrusted ServiceAccount and the operator's own role ask for.
const UNTRUSTED_TARGET: &str = "i-bp1untrusted0000001";
const OPERATOR_TARGET: &str = "i-bp1operatorrole0001";
/// Issued STS credentials live this long, so renewals happen while the test watches.
const STS_LIFETIME_SECONDS: u64 = 8;

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
        oidc: Some(oidc_provider(env)),
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
            operator_trust(),
        ],
        sts_lifetime_seconds: STS_LIFETIME_SECONDS,
        metadata_roles: Vec::new(),
    };
    let sim = ecs_sim::with_keyless_config(config, keyless).await;
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

/// Applies a session that uses `sa` (keyless) for `instance`, and waits until it has Failed.
async fn keyless_failure(
    env: &Env,
    name: &str,
    sa: &str,
    instance: &str,
) -> ecs_vnc_operator::session::VncSession {
    env.apply_ok(&env.keyless_session(name, sa, json!({"instanceId": instance})));
    env.wait_phase(name, "Failed", WAIT).await
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
    a.cluster()
        .apply_file(&root().join("deploy/components/keyless/rbac.yaml"));
    let sim = keyless_sim(&a, &a.ns, &b.ns).await;
    // The operator's own identity: a projected-style token file of its ServiceAccount.
    let token_file = operator_token_file(&a);
    let operator_token = std::fs::read_to_string(&token_file).unwrap();
    let (endpoint, provider, operator_role) = (sim.endpoint(), provider(), role("operator"));
    let flags = [
        ["--sts-endpoint", &endpoint],
        ["--operator-credentials-namespaces", &a.ns],
    ];
    let mut vars = operator_vars(&token_file, &operator_role, &provider).to_vec();
    // Its own switch: the operator's RRSA sets the provider, which alone is not enough.
    vars.push(("ECS_VNC_KEYLESS_SESSIONS", "true"));
    let mut op = a.operator_everywhere(&endpoint, &flags.concat(), &vars);

    each_role_opens_only_what_it_trusts(&a, &b, &sim).await;
    refusals_before_any_exchange_name_the_fix(&a).await;
    the_operators_own_identity_serves_a_session_naming_no_credentials(&a, &sim).await;
    renewals_exchange_once_per_lifetime_not_once_per_url(&a, &sim).await;
    credentials_ecs_rejects_are_exchanged_again(&a, &sim).await;
    // The operator's own RRSA role is not for namespaces it is not offered to, whatever the
    // role's trust policy says.
    service_account(&b, "borrower", Some(&operator_role));
    let borrowed = keyless_failure(&b, "b-borrower", "borrower", OPERATOR_TARGET).await;
    let (code, message) = last_error(&borrowed);
    assert_eq!(code, "CredentialsNotFound");
    assert!(message.contains("the operator's own"), "{message}");
    let expired = an_expired_sts_secret_is_a_failure_of_its_own(&a, &sim).await;

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

/// Two namespaces, each with a ServiceAccount named `opener`: each opens only what its own role
/// is trusted for; a ServiceAccount whose token the role does not trust is refused by STS, and
/// ECS is never called.
async fn each_role_opens_only_what_it_trusts(a: &Env, b: &Env, sim: &SimHandle) {
    service_account(a, "opener", Some(&role("team-a")));
    service_account(b, "opener", Some(&role("team-b")));
    let linux = json!({"instanceId": LINUX});
    let windows = json!({"instanceId": WINDOWS});
    a.apply_ok(&a.keyless_session("a-linux", "opener", linux));
    b.apply_ok(&b.keyless_session("b-windows", "opener", windows.clone()));
    a.apply_ok(&a.keyless_session("a-windows", "opener", windows));
    let ready = a.wait_phase("a-linux", "Ready", WAIT).await;
    assert!(ready.status.unwrap().console_url.is_some());
    b.wait_phase("b-windows", "Ready", WAIT).await;
    let denied = a.wait_phase("a-windows", "Failed", WAIT).await;
    assert_eq!(last_error(&denied).0, "Forbidden.RAM", "{denied:#?}");

    service_account(b, "intruder", Some(&role("team-a")));
    let refused = keyless_failure(b, "b-intruder", "intruder", UNTRUSTED_TARGET).await;
    let (code, message) = last_error(&refused);
    assert!(code.starts_with("AuthenticationFail"), "{code}: {message}");
    assert!(
        message.contains("STS") && message.contains(&format!("{}/intruder", b.ns)),
        "{message}"
    );
    assert_eq!(condition(&refused, "Stalled"), "True", "a person must act");
    assert_eq!(vnc_calls(sim, UNTRUSTED_TARGET), 0, "no ECS call at all");
}

/// A missing ServiceAccount, one without the role annotation, one with a malformed role: each
/// refused before any exchange, naming the fix; fixing the ServiceAccount restarts it.
async fn refusals_before_any_exchange_name_the_fix(a: &Env) {
    let missing = keyless_failure(a, "a-missing", "nobody", LINUX).await;
    let (code, message) = last_error(&missing);
    assert_eq!(code, "CredentialsNotFound");
    assert!(
        message.contains("not found") && message.contains("ecsvnc.dev/role-arn"),
        "{message}"
    );
    service_account(a, "bare", None);
    let bare = keyless_failure(a, "a-bare", "bare", LINUX).await;
    assert!(
        last_error(&bare)
            .1
            .contains("no ecsvnc.dev/role-arn annotation"),
        "{bare:#?}"
    );
    let annotate = |overwrite: &[&str], arn: &str| {
        let (ns, annotation) = (a.ns.as_str(), format!("ecsvnc.dev/role-arn={arn}"));
        let args: [&[&str]; 3] = [
            &["-n", ns, "annotate"],
            overwrite,
            &["serviceaccount", "bare", &annotation],
        ];
        a.kubectl_ok(&args.concat());
    };
    annotate(&[], "acs:ram::12ab:role/x");
    let malformed = a
        .wait_for("a-bare", WAIT, |s| {
            last_error(s).1.contains("must have a numeric account id")
        })
        .await;
    assert_eq!(last_error(&malformed).0, "CredentialsNotFound");
    annotate(&["--overwrite"], &role("team-a"));
    // `bare` is not trusted by team-a's role (only `opener` is): the exchange itself is refused.
    let untrusted = a
        .wait_for("a-bare", WAIT, |s| {
            last_error(s).0.starts_with("AuthenticationFail")
        })
        .await;
    assert!(!untrusted.status.unwrap().refreshable);
}

/// The operator's own RRSA identity, for a session that names no credentials.
async fn the_operators_own_identity_serves_a_session_naming_no_credentials(
    a: &Env,
    sim: &SimHandle,
) {
    a.apply_ok(&a.own_key_session("a-own", json!({"instanceId": OPERATOR_TARGET})));
    a.wait_phase("a-own", "Ready", WAIT).await;
    let sts_keys: Vec<String> = sim.stats().by_account.keys().cloned().collect();
    assert!(
        !sts_keys.is_empty() && sts_keys.iter().all(|k| k.starts_with("STS.")),
        "every ECS call was signed with STS credentials: {sts_keys:?}"
    );
}

fn exchanges(sim: &SimHandle) -> u64 {
    sim.stats().count("AssumeRoleWithOIDC", "Success")
}

/// Refreshes across several STS expiries: every one is served, and credentials are exchanged
/// once per lifetime, not once per URL.
async fn renewals_exchange_once_per_lifetime_not_once_per_url(a: &Env, sim: &SimHandle) {
    let exchanges_before = exchanges(sim);
    let started = Instant::now();
    let mut served = 0;
    for n in 0..10 {
        a.refresh_and_wait("a-linux", &format!("r{n}"), WAIT).await;
        served += 1;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
    let elapsed = started.elapsed().as_secs();
    let exchanges = exchanges(sim) - exchanges_before;
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
}

/// ECS rejects exchanged credentials before they expire (a revoked role session, a clock that
/// ran behind): they are dropped and exchanged again, not treated as a Secret to fix.
async fn credentials_ecs_rejects_are_exchanged_again(a: &Env, sim: &SimHandle) {
    let exchanges_before = exchanges(sim);
    sim.inject(Fault {
        action: Some(VNC.to_owned()),
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
    assert!(exchanges(sim) > exchanges_before);
}

/// An STS token in a Secret that has expired: its own failure, terminal until the Secret
/// changes. Returns the expired credentials.
async fn an_expired_sts_secret_is_a_failure_of_its_own(
    a: &Env,
    sim: &SimHandle,
) -> (String, String, String) {
    let expired = expired_sts_secret(a, sim).await;
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
    let needles = ["expired", "serviceAccountRef"];
    assert_stalled(&failed, "InvalidSecurityToken.Expired", &needles);
    expired
}

/// STS credentials for `a/opener`, exchanged with the sim through the operator's own STS client
/// and left to expire.
async fn expired_sts_secret(a: &Env, sim: &SimHandle) -> (String, String, String) {
    let token = mint_token(a, &a.ns, "opener", 600);
    let request =
        AssumeRoleWithOidc::new(&role("team-a"), &provider(), &token, "e2e-expired").unwrap();
    let issued = StsClient::new(StsOptions::default())
        .unwrap()
        .assume_role_with_oidc(&ecs_sim::endpoint(sim), &request)
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
