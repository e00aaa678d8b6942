//! A test's own corner of the shared control plane: a fresh namespace with a credentials Secret,
//! an in-process ecs-sim, an admin client, and kubectl; the namespace goes when the test ends.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::sim::{SimAccount, SimConfig, SimHandle};
use kube::Api;
use serde_json::Value;

use super::cluster::{Cluster, kubectl_program};
use super::ecs_sim::{self, SIM_KEY_ID, SIM_KEY_SECRET};
use super::paths::example;
use super::shared_cluster;

pub struct Env {
    pub ns: String,
    pub sim: SimHandle,
    pub client: kube::Client,
}

/// Numbers namespaces (and operator logs) apart within one test binary.
pub(super) static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The AccessKey of `examples/credentials-secret.yaml` (placeholders) as an ecs-sim account, so
/// the examples can be applied exactly as they are shipped.
fn example_account() -> SimAccount {
    let path = example("credentials-secret.yaml");
    let text = std::fs::read_to_string(&path).expect("read examples/credentials-secret.yaml");
    let secret: Value = serde_yaml::from_str(&text).expect("examples/credentials-secret.yaml");
    let key = |k: &str| {
        secret["stringData"][k]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no stringData.{k}", path.display()))
            .to_owned()
    };
    SimAccount {
        access_key_id: key("accessKeyId"),
        access_key_secret: key("accessKeySecret"),
        security_token: None,
    }
}

impl Env {
    /// A fresh namespace `e2e-<hint>-<n>` with Secret `ecs-credentials` for the sim's account.
    pub async fn new(hint: &str) -> Env {
        let cluster = shared_cluster::cluster_async().await;
        let ns = format!(
            "e2e-{hint}-{}-{}",
            std::process::id() % 10_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let client = Cluster::client_from(&cluster.kubeconfig).await;
        let config = SimConfig::demo();
        // The shipped examples must work against ecs-sim as they are.
        assert!(
            config.accounts.contains(&example_account()),
            "ecs-sim's demo accounts lack the key of examples/credentials-secret.yaml"
        );
        let sim = ecs_sim::start(config).await;
        let env = Env { ns, sim, client };
        env.kubectl_ok(&["create", "namespace", &env.ns]);
        env.create_secret("ecs-credentials", SIM_KEY_ID, SIM_KEY_SECRET);
        env
    }

    pub fn cluster(&self) -> &'static Cluster {
        shared_cluster::cluster()
    }

    pub fn kubeconfig(&self) -> &'static Path {
        &self.cluster().kubeconfig
    }

    pub fn create_secret(&self, name: &str, id: &str, secret: &str) {
        self.kubectl_ok(&[
            "-n",
            &self.ns,
            "create",
            "secret",
            "generic",
            name,
            &format!("--from-literal=accessKeyId={id}"),
            &format!("--from-literal=accessKeySecret={secret}"),
        ]);
    }

    /// kubectl as admin (no namespace added).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.cluster().kubectl(args)
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of a manifest in this namespace.
    pub fn apply(&self, manifest: &Value) -> Output {
        let mut child = Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["-n", &self.ns, "apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.to_string().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn apply_ok(&self, manifest: &Value) {
        let out = self.apply(manifest);
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn api(&self) -> Api<VncSession> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
