//! Child processes of a test: the variables a child must not inherit, and signals by PID.

use std::process::{Command, Output};

/// What the credential chain reads from the environment: a child started by a test gets only
/// the credentials the test gives it, never the developer's own.
pub const CREDENTIAL_VARS: [&str; 8] = [
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_ROLE_SESSION_NAME",
    "ALIBABA_CLOUD_ECS_METADATA",
];

/// `kill -NAME PID`; whether it was delivered.
pub fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command` to its end and returns what it printed; panics, naming `fix`, if it cannot
/// start or exits unsuccessfully (with its stderr).
#[track_caller]
pub fn output_ok(command: &mut Command, fix: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?} ({e}): {fix}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}; {fix}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
