//! Test support: a private Kubernetes control plane for end-to-end tests.
//!
//! [`Cluster::start`] runs `scripts/local-cluster.sh up`, which starts etcd,
//! kube-apiserver 1.20.2 and kube-controller-manager (namespace, garbage
//! collector, service-account and service-account-token controllers) on free
//! loopback ports in a fresh temporary directory. Dropping the [`Cluster`]
//! runs `scripts/local-cluster.sh down`, which stops those processes and
//! removes the directory.
//!
//! With `ECSVNC_CRD_SERVER=1.36` in the environment (or
//! [`Cluster::start_with`]`(Some("1.36"))`) it is the hybrid instead: the
//! `ecsvnc.dev` group is served by the Kubernetes 1.36 apiextensions-apiserver,
//! aggregated behind kube-apiserver 1.20 (APIService `v1alpha1.ecsvnc.dev`),
//! with `crds/vncsession.yaml` already installed on the 1.36 server by `up`.
//! There the CRD must NOT be applied through kube-apiserver (it would become a
//! second, 1.20 copy): see [`Cluster::install_vncsession_crd`]. Everything
//! else (kubeconfig, kubectl, clients, RBAC, ServiceAccounts) is the same.
//!
//! kube-apiserver writes an audit log (level Metadata, the control plane's own
//! reads left out) to [`Cluster::audit_log`] in both modes.
//!
//! The binaries are built once (about 6 + 4 minutes) with
//! `scripts/local-cluster.sh build`; a test never builds them itself but
//! panics with that instruction instead.
//!
//! Reached through the shared test library: `mod support;` then `support::cluster::Cluster`.
//!
//! Note: there is no kubelet or scheduler, so Pods are stored but never run.
//! The kube-apiserver is Kubernetes 1.20: no CEL validation rules in CRDs it
//! serves itself, no server-side strict field validation, ServiceAccount token
//! Secrets are still created automatically.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::paths::{cache_root, root};

/// Must match `K8S_VERSION` in `scripts/cluster/lib.sh`.
const K8S_VERSION: &str = "1.20.2";
/// Must match `CRD_K8S_MINOR` in `scripts/cluster/lib.sh`: the only
/// supported value of `ECSVNC_CRD_SERVER`.
pub const CRD_SERVER_VERSION: &str = "1.36";
/// The CRD `scripts/local-cluster.sh up` installs on the 1.36 server.
const VNCSESSION_CRD: &str = "crds/vncsession.yaml";

/// A running private control plane. Stopped and deleted on drop.
pub struct Cluster {
    /// State directory (logs, certificates, etcd data, kubeconfig).
    pub dir: PathBuf,
    /// Admin kubeconfig (group `system:masters`), CA embedded.
    pub kubeconfig: PathBuf,
    /// API server URL, `https://127.0.0.1:PORT`.
    pub apiserver: String,
    /// `Some("1.36")` for the hybrid.
    crd_server: Option<String>,
    /// The 1.36 server's own URL (`https://127.0.100.36:PORT`), hybrid only.
    crd_server_url: Option<String>,
}

fn script() -> PathBuf {
    root().join("scripts/local-cluster.sh")
}

/// Where `scripts/local-cluster.sh build` puts the binaries.
pub fn bin_dir() -> PathBuf {
    cache_root().join(format!("k8s-{K8S_VERSION}")).join("bin")
}

/// Where `scripts/local-cluster.sh build` puts the 1.36 apiextensions-apiserver.
fn crd_bin_dir() -> PathBuf {
    cache_root()
        .join(format!("k8s-crd-{CRD_SERVER_VERSION}"))
        .join("bin")
}

/// `ECSVNC_CRD_SERVER` from the environment: `None` (unset, empty or `1.20`)
/// or `Some("1.36")`; anything else panics.
pub fn crd_server_from_env() -> Option<String> {
    match std::env::var("ECSVNC_CRD_SERVER") {
        Err(std::env::VarError::NotPresent) => None,
        Ok(v) if v.is_empty() || v == "1.20" => None,
        Ok(v) if v == CRD_SERVER_VERSION => Some(v),
        other => panic!(
            "ECSVNC_CRD_SERVER={other:?}: use {CRD_SERVER_VERSION} (the hybrid) or leave it unset"
        ),
    }
}

/// `/usr/bin/kubectl`, else `kubectl` from PATH.
pub fn kubectl_program() -> PathBuf {
    let system = Path::new("/usr/bin/kubectl");
    if system.exists() {
        system.to_path_buf()
    } else {
        PathBuf::from("kubectl")
    }
}

/// A finished command's exit status, stdout and stderr, for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics, naming the fix, unless the binaries `up` needs are built and kubectl runs (never
/// skips, never builds: that takes minutes).
fn check_prerequisites(crd_server: Option<&str>) {
    if let Some(version) = crd_server {
        assert_eq!(
            version, CRD_SERVER_VERSION,
            "unsupported CRD server {version}: only {CRD_SERVER_VERSION}"
        );
        let binary = crd_bin_dir().join("apiextensions-apiserver");
        if !binary.is_file() {
            panic!(
                "the Kubernetes {CRD_SERVER_VERSION} apiextensions-apiserver is missing ({}): \
                 run scripts/local-cluster.sh build first \
                 (one-off, ~4 minutes; it downloads Debian sid's Go packages)",
                binary.display()
            );
        }
    }
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
}

/// `scripts/local-cluster.sh up`: the state directory it printed last.
fn up(crd_server: Option<&str>) -> PathBuf {
    // ECSVNC_OWNER_PID: the script's watchdog tears the control plane
    // down once this test process is gone, even if it was killed before
    // Drop could run (or the Cluster lived in a static).
    let mut up = Command::new("bash");
    up.arg(script())
        .arg("up")
        .env("ECSVNC_OWNER_PID", std::process::id().to_string())
        .stdin(Stdio::null());
    match crd_server {
        Some(version) => up.env("ECSVNC_CRD_SERVER", version),
        None => up.env_remove("ECSVNC_CRD_SERVER"),
    };
    let out = up
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
    stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| PathBuf::from(line.trim()))
        .unwrap_or_else(|| {
            panic!(
                "local-cluster.sh up printed no directory\n{}",
                describe(&out)
            )
        })
}

impl Cluster {
    /// Starts a private control plane via `scripts/local-cluster.sh up`: the
    /// hybrid if `ECSVNC_CRD_SERVER=1.36`, else plain 1.20.
    ///
    /// Blocks for the ~5-10 s start-up (until `/readyz` answers and the
    /// `default` ServiceAccount exists; in the hybrid also until the CRD is
    /// Established on the 1.36 server and the APIService is Available).
    /// Panics if the binaries have not been built yet (never skips, never
    /// builds: that takes minutes).
    pub fn start() -> Cluster {
        Self::start_with(crd_server_from_env().as_deref())
    }

    /// Plain kube-apiserver 1.20 whatever `ECSVNC_CRD_SERVER` says (e.g. for
    /// a control plane without the CRD).
    pub fn start_plain() -> Cluster {
        Self::start_with(None)
    }

    /// [`Cluster::start`] with the CRD server given explicitly: `None` for
    /// plain 1.20, `Some("1.36")` for the hybrid.
    pub fn start_with(crd_server: Option<&str>) -> Cluster {
        check_prerequisites(crd_server);
        let dir = up(crd_server);
        // From here on, Drop cleans up even if the rest panics.
        let mut cluster = Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            apiserver: String::new(),
            crd_server: None,
            crd_server_url: None,
        };
        let env = std::fs::read_to_string(cluster.dir.join("env"))
            .unwrap_or_else(|e| panic!("cannot read {}/env: {e}", cluster.dir.display()));
        let var = |name: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .map(|s| s.trim().to_string())
        };
        cluster.apiserver = var("ECSVNC_APISERVER")
            .unwrap_or_else(|| panic!("no ECSVNC_APISERVER in {}/env", cluster.dir.display()));
        cluster.crd_server = var("ECSVNC_CRD_SERVER_VERSION");
        cluster.crd_server_url = var("ECSVNC_CRD_SERVER_URL");
        assert_eq!(
            cluster.crd_server.as_deref(),
            crd_server,
            "local-cluster.sh up started another CRD server than asked for"
        );
        cluster
    }

    /// `Some("1.36")` if `ecsvnc.dev` is served by the 1.36
    /// apiextensions-apiserver behind the aggregator (the hybrid), `None` for
    /// plain kube-apiserver 1.20.
    pub fn crd_server(&self) -> Option<&str> {
        self.crd_server.as_deref()
    }

    /// The 1.36 server's own URL (hybrid only), e.g. for
    /// `kubectl --server URL get --raw /version` with [`Self::kubeconfig`]: it
    /// accepts the admin token (delegated authentication) and its certificate
    /// is signed by the cluster CA.
    pub fn crd_server_url(&self) -> Option<&str> {
        self.crd_server_url.as_deref()
    }

    /// kube-apiserver's audit log (JSON lines, `audit.k8s.io/v1` Events at
    /// level Metadata, stages ResponseStarted (watches) and ResponseComplete;
    /// written synchronously, so a request is in it once its response came).
    /// Every request of a user or ServiceAccount is in it, including, in the
    /// hybrid, those to `ecsvnc.dev` (the aggregator proxies them); left out
    /// are only the reads of the control plane's own components.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Makes `crds/vncsession.yaml` served and ready, whichever the control
    /// plane. Plain 1.20: `kubectl apply --validate=false` and wait for
    /// `Established` (1.20 predates `x-kubernetes-validations`: kubectl's
    /// client-side validation refuses the field and the server drops it, so
    /// there the CEL rules are not enforced; the controller checks them too).
    /// The hybrid: `up` has installed it on the 1.36 server already and waited
    /// until the aggregator routes `ecsvnc.dev`, so this only checks that the
    /// APIService is Available (applying it through kube-apiserver would fail
    /// validation, or with `--validate=false` create a second, 1.20 copy).
    pub fn install_vncsession_crd(&self) {
        if self.crd_server.is_some() {
            let out = self.kubectl(&[
                "wait",
                "--for=condition=Available",
                "apiservice/v1alpha1.ecsvnc.dev",
                "--timeout=60s",
            ]);
            assert!(
                out.status.success(),
                "APIService v1alpha1.ecsvnc.dev not Available\n{}",
                describe(&out)
            );
            return;
        }
        let path = root().join(VNCSESSION_CRD);
        let path_str = path.to_str().expect("non-UTF-8 path");
        let out = self.kubectl(&["apply", "--validate=false", "-f", path_str]);
        assert!(
            out.status.success(),
            "kubectl apply -f {path_str} failed\n{}",
            describe(&out)
        );
        let out = self.kubectl(&[
            "wait",
            "--for=condition=established",
            "crd/vncsessions.ecsvnc.dev",
            "--timeout=60s",
        ]);
        assert!(
            out.status.success(),
            "CRD vncsessions.ecsvnc.dev not established\n{}",
            describe(&out)
        );
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
