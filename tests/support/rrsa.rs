//! RRSA against ecs-sim's STS: the account's ARNs, an OIDC provider that trusts the local control
//! plane's ServiceAccount tokens (verified with its `pki/sa.pub`), tokens minted by the API
//! server, and the operator's own identity (a sim whose role `operator` trusts the operator's
//! ServiceAccount, the token file `ALIBABA_CLOUD_OIDC_TOKEN_FILE` points at).

use std::path::PathBuf;

use ecs_vnc_operator::sim::{KeylessConfig, OidcProvider, SimConfig, SimHandle, SimRole};
use serde_json::{Value, json};

use super::ecs_sim;
use super::env::Env;
use super::shared_cluster::OPERATOR_NS;

pub const ACCOUNT: &str = "1234567890123456";
/// The issuer of the local control plane's ServiceAccount tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc";

pub fn provider() -> String {
    format!("acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-e2e")
}

/// The ARN of RAM role `name` of the account.
pub fn role(name: &str) -> String {
    format!("acs:ram::{ACCOUNT}:role/{name}")
}

pub fn operator_role() -> String {
    role("operator")
}

/// `system:serviceaccount:NS:SA`, the `sub` of its tokens.
pub fn subject(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

/// The provider, verifying tokens with the control plane's own signing key.
pub fn oidc_provider(env: &Env) -> OidcProvider {
    OidcProvider {
        issuer: ISSUER.to_owned(),
        provider_arn: provider(),
        public_key_file: env.cluster().dir.join("pki/sa.pub"),
    }
}

/// Role `operator`, trusting the operator's own ServiceAccount for every instance.
pub fn operator_trust() -> SimRole {
    SimRole {
        arn: operator_role(),
        subjects: vec![subject(OPERATOR_NS, "ecs-vnc-operator")],
        instances: None,
    }
}

/// ecs-sim with STS, whose role `operator` trusts the operator's own ServiceAccount.
pub async fn rrsa_sim(env: &Env) -> SimHandle {
    let keyless = KeylessConfig {
        oidc: Some(oidc_provider(env)),
        roles: vec![operator_trust()],
        sts_lifetime_seconds: 3600,
        metadata_roles: Vec::new(),
    };
    ecs_sim::with_keyless_config(SimConfig::demo(), keyless).await
}

/// A token of `ns/sa` for STS, living `seconds`, minted by the API server (TokenRequest).
pub fn mint_token(env: &Env, ns: &str, sa: &str, seconds: u32) -> String {
    let request = env
        .cluster()
        .dir
        .join(format!("token-request-{}-{ns}-{sa}.json", env.ns));
    let spec = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": ["sts.aliyuncs.com"], "expirationSeconds": seconds}});
    std::fs::write(&request, spec.to_string()).unwrap();
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token");
    let out = env.kubectl_ok(&["create", "--raw", &path, "-f", request.to_str().unwrap()]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    answer["status"]["token"].as_str().unwrap().to_owned()
}

/// The operator's RRSA token file: a token of its ServiceAccount (an hour) minted by the API
/// server, in a file of `env`'s own.
pub fn operator_token_file(env: &Env) -> PathBuf {
    let token = mint_token(env, OPERATOR_NS, "ecs-vnc-operator", 3600);
    let file = env.cluster().dir.join(format!("rrsa-token-{}", env.ns));
    std::fs::write(&file, token).unwrap();
    file
}

/// The variables the operator's RRSA identity sets, for a token file, role and provider.
pub fn operator_vars<'a>(
    token_file: &'a std::path::Path,
    role: &'a str,
    provider: &'a str,
) -> [(&'static str, &'a str); 3] {
    [
        (
            "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
        ("ALIBABA_CLOUD_ROLE_ARN", role),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", provider),
    ]
}
