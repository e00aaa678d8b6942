//! Test support: a private Kubernetes control plane for end-to-end tests.
//!
//! [`Cluster::start`] runs `scripts/local-cluster.sh up`, which starts etcd,
//! kube-apiserver 1.20.2 and kube-controller-manager (namespace, garbage
//! collector, service-account and service-account-token controllers) on free
//! loopback ports in a fresh temporary directory. Dropping the [`Cluster`]
//! runs `scripts/local-cluster.sh down`, which stops those processes and
//! removes the directory.
//!
//! The binaries are built once (about 6 minutes) with
//! `scripts/local-cluster.sh build`; a test never builds them itself but
//! panics with that instruction instead.
//!
//! Include it from an integration test with
//! `#[path = "support/cluster.rs"] mod cluster;`.
//!
//! Note: there is no kubelet or scheduler, so Pods are stored but never run.
//! The apiserver is Kubernetes 1.20: no CEL validation rules in CRDs, no
//! server-side strict field validation, ServiceAccount token Secrets are still
//! created automatically.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Must match `K8S_VERSION` in `scripts/local-cluster.sh`.
const K8S_VERSION: &str = "1.20.2";

/// A running private control plane. Stopped and deleted on drop.
pub struct Cluster {
    /// State directory (logs, certificates, etcd data, kubeconfig).
    pub dir: PathBuf,
    /// Admin kubeconfig (group `system:masters`), CA embedded.
    pub kubeconfig: PathBuf,
    /// API server URL, `https://127.0.0.1:PORT`.
    pub apiserver: String,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    manifest_dir().join("scripts/local-cluster.sh")
}

/// Where `scripts/local-cluster.sh build` puts the binaries.
fn bin_dir() -> PathBuf {
    let root = match std::env::var_os("ECSVNC_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set");
            PathBuf::from(home).join(".cache/ecs-vnc-operator")
        }
    };
    root.join(format!("k8s-{K8S_VERSION}")).join("bin")
}

fn kubectl_program() -> PathBuf {
    let system = Path::new("/usr/bin/kubectl");
    if system.exists() {
        system.to_path_buf()
    } else {
        PathBuf::from("kubectl")
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Cluster {
    /// Starts a private control plane via `scripts/local-cluster.sh up`.
    ///
    /// Blocks for the ~5-10 s start-up (until `/readyz` answers and the
    /// `default` ServiceAccount exists). Panics if the binaries have not been
    /// built yet (never skips, never builds: that takes minutes).
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let missing: Vec<&str> = ["etcd", "kube-apiserver", "kube-controller-manager"]
            .into_iter()
            .filter(|name| !bin.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            panic!(
                "local control plane binaries missing in {} ({}): \
                 run scripts/local-cluster.sh build first \
                 (one-off, ~6 minutes; it runs scripts/install-deps.sh for the apt packages)",
                bin.display(),
                missing.join(", ")
            );
        }
        if Command::new(kubectl_program())
            .args(["version", "--client"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            panic!("kubectl not found: run scripts/install-deps.sh");
        }

        // ECSVNC_OWNER_PID: the script's watchdog tears the control plane
        // down once this test process is gone, even if it was killed before
        // Drop could run (or the Cluster lived in a static).
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .env("ECSVNC_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        if !out.status.success() {
            panic!(
                "scripts/local-cluster.sh up failed (if binaries are missing: \
                 run scripts/local-cluster.sh build first)\n{}",
                describe(&out)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .map(|line| PathBuf::from(line.trim()))
            .unwrap_or_else(|| {
                panic!(
                    "local-cluster.sh up printed no directory\n{}",
                    describe(&out)
                )
            });

        // From here on, Drop cleans up even if the rest panics.
        let mut cluster = Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            apiserver: String::new(),
        };
        let env = std::fs::read_to_string(cluster.dir.join("env"))
            .unwrap_or_else(|e| panic!("cannot read {}/env: {e}", cluster.dir.display()));
        cluster.apiserver = env
            .lines()
            .find_map(|line| line.strip_prefix("export ECSVNC_APISERVER="))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("no ECSVNC_APISERVER in {}/env", cluster.dir.display()));
        cluster
    }

    /// An admin client (group `system:masters`) from the cluster's kubeconfig.
    pub async fn client(&self) -> kube::Client {
        Self::client_from(&self.kubeconfig).await
    }

    /// A client for any kubeconfig, e.g. one from [`Self::service_account_kubeconfig`].
    pub async fn client_from(kubeconfig: &Path) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)
            .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", kubeconfig.display()));
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap_or_else(|e| panic!("bad kubeconfig {}: {e}", kubeconfig.display()));
        kube::Client::try_from(config).unwrap_or_else(|e| panic!("cannot build kube client: {e}"))
    }

    /// Runs kubectl (`/usr/bin/kubectl`, else `kubectl` from PATH) against
    /// this cluster as admin. Does not check the exit status.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run kubectl: {e} (run scripts/install-deps.sh)"))
    }

    /// `kubectl apply -f PATH`; panics with kubectl's output on failure.
    pub fn apply_file(&self, path: &Path) {
        let path_str = path.to_str().expect("non-UTF-8 path");
        let out = self.kubectl(&["apply", "-f", path_str]);
        if !out.status.success() {
            panic!(
                "kubectl apply -f {} failed\n{}",
                path.display(),
                describe(&out)
            );
        }
    }

    /// Writes a kubeconfig that authenticates as ServiceAccount
    /// `namespace/name` (which must exist) and returns its path. Waits up to
    /// 30 s for the controller manager to create the SA's token Secret
    /// (automatic in Kubernetes 1.20).
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(30);
        let token = loop {
            let secret = self.kubectl(&[
                "-n",
                namespace,
                "get",
                "serviceaccount",
                name,
                "-o",
                "jsonpath={.secrets[0].name}",
            ]);
            let secret_name = String::from_utf8_lossy(&secret.stdout).trim().to_string();
            if secret.status.success() && !secret_name.is_empty() {
                let token = self.kubectl(&[
                    "-n",
                    namespace,
                    "get",
                    "secret",
                    &secret_name,
                    "-o",
                    "go-template={{if .data.token}}{{.data.token | base64decode}}{{end}}",
                ]);
                let token_str = String::from_utf8_lossy(&token.stdout).trim().to_string();
                if token.status.success() && !token_str.is_empty() {
                    break token_str;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "no token Secret for ServiceAccount {namespace}/{name} after 30 s\n{}",
                    describe(&secret)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let path = self.dir.join(format!("kubeconfig-sa-{namespace}-{name}"));
        let ca = self.dir.join("pki/ca.crt");
        // JSON is valid YAML; serde_json takes care of quoting.
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": self.apiserver,
                "certificate-authority": ca.to_str().expect("non-UTF-8 path"),
            }}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {
                "cluster": "local", "user": "sa", "namespace": namespace,
            }}],
            "current-context": "sa",
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let result = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match result {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: local-cluster.sh down {} failed\n{}",
                self.dir.display(),
                describe(&out)
            ),
            Err(e) => eprintln!("warning: cannot run local-cluster.sh down: {e}"),
        }
    }
}
