//! The operator's own RRSA identity against ecs-sim's STS: a sim whose role `operator` trusts the
//! operator's ServiceAccount (tokens verified with the control plane's `pki/sa.pub`), and the
//! token file `ALIBABA_CLOUD_OIDC_TOKEN_FILE` points at, minted by the API server.
#![allow(dead_code)]

use std::path::PathBuf;

use ecs_vnc_operator::sim::{self, KeylessConfig, OidcProvider, SimConfig, SimHandle, SimRole};
use serde_json::{Value, json};

use super::harness::{Env, OPERATOR_NS};

pub const ACCOUNT: &str = "1234567890123456";
/// The issuer of the local control plane's ServiceAccount tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc";

pub fn provider() -> String {
    format!("acs:ram::{ACCOUNT}:oidc-provider/ack-rrsa-e2e")
}

pub fn operator_role() -> String {
    format!("acs:ram::{ACCOUNT}:role/operator")
}

/// ecs-sim with STS, whose role `operator` trusts the operator's own ServiceAccount.
pub async fn rrsa_sim(env: &Env) -> SimHandle {
    let keyless = KeylessConfig {
        oidc: Some(OidcProvider {
            issuer: ISSUER.to_owned(),
            provider_arn: provider(),
            public_key_file: env.cluster().dir.join("pki/sa.pub"),
        }),
        roles: vec![SimRole {
            arn: operator_role(),
            subjects: vec![format!(
                "system:serviceaccount:{OPERATOR_NS}:ecs-vnc-operator"
            )],
            instances: None,
        }],
        sts_lifetime_seconds: 3600,
        metadata_roles: Vec::new(),
    };
    let listen = "127.0.0.1:0".parse().unwrap();
    sim::start_with_keyless(SimConfig::demo(), keyless, listen)
        .await
        .unwrap()
}

/// The operator's RRSA token file: a token of its ServiceAccount minted by the API server.
pub fn operator_token_file(env: &Env) -> PathBuf {
    let dir = &env.cluster().dir;
    let request = dir.join(format!("token-request-{}.json", env.ns));
    let spec = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": ["sts.aliyuncs.com"], "expirationSeconds": 3600}});
    std::fs::write(&request, spec.to_string()).unwrap();
    let path = format!("/api/v1/namespaces/{OPERATOR_NS}/serviceaccounts/ecs-vnc-operator/token");
    let out = env.kubectl_ok(&["create", "--raw", &path, "-f", request.to_str().unwrap()]);
    let answer: Value = serde_json::from_str(&out).unwrap();
    let file = dir.join(format!("rrsa-token-{}", env.ns));
    std::fs::write(&file, answer["status"]["token"].as_str().unwrap()).unwrap();
    file
}
