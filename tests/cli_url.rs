//! `ecs-vnc-operator url`, the built binary, against an in-process ecs-sim.

mod support;

use std::process::Output;

use ecs_vnc_operator::aliyun::DEFAULT_CONSOLE_BASE;
use ecs_vnc_operator::sim::{Fault, FaultKind, KeylessConfig, MetadataRole, SimHandle};
use support::ecs_sim::{self, LINUX, SIM_KEY_ID, SIM_KEY_SECRET, VNC, WINDOWS, demo};
use support::ports::closed_endpoint;
use support::processes::CREDENTIAL_VARS;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ecs-vnc-operator");

/// The binary with a clean environment: only the credentials given here.
fn url_cmd(creds: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("url").args(args);
    for var in CREDENTIAL_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("ECS_VNC_ECS_METADATA_ENDPOINT")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    for (k, v) in creds {
        cmd.env(k, v);
    }
    cmd
}

const DEMO_CREDS: &[(&str, &str)] = &[
    ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID),
    ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_KEY_SECRET),
];

/// `--region-id cn-hangzhou --instance-id INSTANCE --endpoint ENDPOINT`, then `extra`.
fn url_args<'a>(instance: &'a str, endpoint: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--region-id",
        "cn-hangzhou",
        "--instance-id",
        instance,
        "--endpoint",
        endpoint,
    ];
    args.extend_from_slice(extra);
    args
}

async fn run(creds: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = url_cmd(creds, args).output().await.expect("binary runs");
    let stdout = String::from_utf8(stdout).unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    for shown in [&stdout, &stderr] {
        assert!(!shown.contains(SIM_KEY_SECRET), "secret leaked: {shown}");
        assert!(
            !shown.contains("Signature="),
            "signed query leaked: {shown}"
        );
    }
    (status.code().expect("exited"), stdout, stderr)
}

/// [`run`] with the demo AccessKey, for `instance` on `sim`, then `extra`.
async fn run_demo(sim: &SimHandle, instance: &str, extra: &[&str]) -> (i32, String, String) {
    let endpoint = sim.endpoint();
    run(DEMO_CREDS, &url_args(instance, &endpoint, extra)).await
}

/// [`run`] with instance RAM role `role` from `sim`'s metadata side, for the Linux instance.
async fn run_as_instance_role(sim: &SimHandle, role: &str) -> (i32, String, String) {
    let endpoint = sim.endpoint();
    let creds = [
        ("ALIBABA_CLOUD_ECS_METADATA", role),
        ("ECS_VNC_ECS_METADATA_ENDPOINT", &endpoint),
    ];
    run(&creds, &url_args(LINUX, &endpoint, &[])).await
}

#[tokio::test]
async fn text_prints_only_the_console_url() {
    let sim = demo().await;
    let (code, stdout, stderr) = run_demo(&sim, LINUX, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line = stdout.trim_end();
    assert!(
        line.starts_with(&format!("{DEFAULT_CONSOLE_BASE}?vncUrl=wss%3A%2F%2F")),
        "{line}"
    );
    assert!(
        line.ends_with(&format!("&instanceId={LINUX}&isWindows=false")),
        "{line}"
    );
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        sim.stats().count("DescribeInstances", "Success"),
        1,
        "auto asks"
    );
    assert_eq!(sim.stats().count(VNC, "Success"), 1);
}

#[tokio::test]
async fn json_has_every_field_and_the_timing() {
    let sim = demo().await;
    let before = jiff::Timestamp::now();
    let (code, stdout, stderr) = run_demo(&sim, WINDOWS, &["--output", "json"]).await;
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    assert_eq!(s("instanceId"), WINDOWS);
    assert_eq!(v["isWindows"], true);
    assert!(s("vncUrl").starts_with("wss%3A%2F%2F"));
    assert_eq!(
        s("consoleUrl"),
        format!(
            "{DEFAULT_CONSOLE_BASE}?vncUrl={}&instanceId={WINDOWS}&isWindows=true",
            s("vncUrl")
        )
    );
    assert!(!s("requestId").is_empty());
    let issued: jiff::Timestamp = s("issuedAt").parse().unwrap();
    let url_expires: jiff::Timestamp = s("urlExpiresAt").parse().unwrap();
    let session_expires: jiff::Timestamp = s("sessionExpiresAt").parse().unwrap();
    assert!(s("issuedAt").ends_with('Z'));
    assert!(
        issued
            >= before
                .checked_sub(jiff::SignedDuration::from_secs(1))
                .unwrap()
    );
    assert_eq!(url_expires.duration_since(issued).as_secs(), 15);
    assert_eq!(session_expires.duration_since(url_expires).as_secs(), 300);
    assert_eq!(
        v.as_object().unwrap().len(),
        8,
        "exactly the documented fields: {v}"
    );
}

#[tokio::test]
async fn windows_flag_overrides_detection() {
    let sim = demo().await;
    let (code, stdout, _) = run_demo(&sim, WINDOWS, &["--windows", "false"]).await;
    assert_eq!(code, 0);
    assert!(stdout.trim_end().ends_with("&isWindows=false"));
    assert_eq!(
        sim.stats().total("DescribeInstances"),
        0,
        "no detection asked"
    );

    let (code, stdout, _) = run_demo(&sim, WINDOWS, &[]).await;
    assert_eq!(code, 0);
    assert!(
        stdout.trim_end().ends_with("&isWindows=true"),
        "auto detects Windows"
    );
}

#[tokio::test]
async fn console_base_with_query_is_extended() {
    let sim = demo().await;
    let base = "https://console.example/vnc?lang=en";
    let extra = ["--windows", "false", "--console-base-url", base];
    let (code, stdout, _) = run_demo(&sim, LINUX, &extra).await;
    assert_eq!(code, 0);
    let extended = format!("{base}&vncUrl=");
    assert!(stdout.starts_with(&extended), "{stdout}");
}

#[tokio::test]
async fn ecs_error_exits_1_with_code_message_and_request_id() {
    let sim = demo().await;
    let (code, stdout, stderr) = run_demo(&sim, "i-doesnotexist", &["--windows", "false"]).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(
            "error: ECS answered InvalidInstanceId.NotFound: The specified InstanceId does not exist. (RequestId: "
        ),
        "{stderr}"
    );

    // Detection reports the same code when DescribeInstances does not know the instance.
    let (code, _, stderr) = run_demo(&sim, "i-doesnotexist", &[]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("InvalidInstanceId.NotFound"), "{stderr}");
    assert!(stderr.contains("RequestId: "), "{stderr}");
}

#[tokio::test]
async fn retried_errors_do_not_leak_in_debug_logs() {
    let sim = demo().await;
    let endpoint = sim.endpoint();
    sim.inject(Fault {
        action: Some(VNC.into()),
        instance_id: None,
        kind: FaultKind::InternalError,
        count: 1,
    });
    let output = url_cmd(
        DEMO_CREDS,
        &url_args(LINUX, &endpoint, &["--windows", "false"]),
    )
    .env("RUST_LOG", "trace")
    .output()
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("InternalError"),
        "the retry is logged: {stderr}"
    );
    let vnc_url = stdout
        .split("vncUrl=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    for leak in [
        SIM_KEY_SECRET,
        SIM_KEY_ID,
        "Signature",
        "SignatureNonce",
        vnc_url,
    ] {
        assert!(!stderr.contains(leak), "{leak} leaked into logs: {stderr}");
    }
}

#[tokio::test]
async fn missing_credentials_exit_2_and_name_the_variables() {
    let no_endpoint = ["--region-id", "cn-hangzhou", "--instance-id", LINUX];
    let (code, stdout, stderr) = run(&[], &no_endpoint).await;
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{stderr}");
    assert!(
        stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        "{stderr}"
    );

    let id_only = [("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID)];
    let (code, _, stderr) = run(&id_only, &no_endpoint).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn malformed_input_exits_2_before_any_call() {
    let sim = demo().await;
    let endpoint = sim.endpoint();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--region-id", "cn-hangzhou", "--instance-id", "bp1-NOPE"],
            "instanceId",
        ),
        (
            &["--region-id", "Hangzhou", "--instance-id", LINUX],
            "regionId",
        ),
        (
            &[
                "--region-id",
                "cn-hangzhou",
                "--instance-id",
                LINUX,
                "--endpoint",
                "ftp://x",
            ],
            "http://",
        ),
        (
            &[
                "--region-id",
                "cn-hangzhou",
                "--instance-id",
                LINUX,
                "--endpoint",
                "https://x/?a=b",
            ],
            "query",
        ),
    ];
    for (args, needle) in cases {
        let mut args = args.to_vec();
        if !args.contains(&"--endpoint") {
            args.extend(["--endpoint", &endpoint]);
        }
        let (code, stdout, stderr) = run(DEMO_CREDS, &args).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(sim.stats().total(VNC), 0);
    assert_eq!(sim.stats().total("DescribeInstances"), 0);
}

#[tokio::test]
async fn unreachable_endpoint_exits_2_without_query_string() {
    let endpoint = closed_endpoint();
    let args = url_args(LINUX, &endpoint, &["--windows", "true"]);
    let (code, stdout, stderr) = run(DEMO_CREDS, &args).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "error: could not reach {endpoint}: connection refused"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains('?'), "{stderr}");
    assert!(!stderr.contains(SIM_KEY_ID), "{stderr}");
}

/// The instance RAM role, the chain's last source: IMDSv2 against ecs-sim's metadata side, and
/// the temporary credentials it hands out sign the ECS calls.
#[tokio::test]
async fn the_instance_ram_role_signs_when_nothing_else_is_set() {
    let keyless = KeylessConfig {
        metadata_roles: vec![MetadataRole {
            name: "EcsVncRole".to_owned(),
            instances: None,
        }],
        ..KeylessConfig::default()
    };
    let sim = ecs_sim::with_keyless(keyless).await;
    let (code, stdout, stderr) = run_as_instance_role(&sim, "EcsVncRole").await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(DEFAULT_CONSOLE_BASE), "{stdout}");
    let stats = sim.stats();
    assert!(
        stats.count("Metadata.Token", "Success") >= 1,
        "IMDSv2 token first"
    );
    assert_eq!(stats.count("Metadata.SecurityCredentials", "Success"), 1);
    assert_eq!(stats.count(VNC, "Success"), 1);
}

#[tokio::test]
async fn an_unknown_instance_role_fails_naming_it() {
    let sim = demo().await;
    let (code, _, stderr) = run_as_instance_role(&sim, "NoSuchRole").await;
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("NoSuchRole") || stderr.contains("instance"),
        "{stderr}"
    );
    assert_eq!(sim.stats().count(VNC, "Success"), 0);
}
