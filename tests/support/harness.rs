//! End-to-end harness: one private control plane per test binary (with the CRD and the RBAC of
//! `deploy/`), and per test a namespace, a credentials Secret, an in-process `ecs-sim`, and
//! operator processes that run as the `deploy/` ServiceAccount and watch only that namespace.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ecs_vnc_operator::session::VncSession;
use ecs_vnc_operator::sim::{self, SimAccount, SimConfig, SimHandle};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::cluster::Cluster;

pub const OPERATOR_NS: &str = "ecs-vnc-system";
pub const SIM_KEY_ID: &str = "sim-access-key-id";
pub const SIM_KEY_SECRET: &str = "sim-access-key-secret";
pub const LINUX: &str = "i-bp1hzoinajzkh91h1234";
pub const WINDOWS: &str = "i-bp1windows0000000001";

struct Shared {
    cluster: Cluster,
    operator_kubeconfig: PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Starts the control plane once and installs what a platform team would: the CRD, the operator's
/// namespace, ServiceAccount and RBAC from `deploy/`.
fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let cluster = Cluster::start();
        // On 1.20 the CRD is applied (kubectl 1.20 cannot validate its CEL rules, so without
        // client-side validation); on the 1.36 hybrid `up` installed it on the 1.36 server.
        cluster.install_vncsession_crd();
        for file in [
            "deploy/base/namespace.yaml",
            "deploy/base/serviceaccount.yaml",
            "deploy/rbac.yaml",
        ] {
            cluster.apply_file(&root().join(file));
        }
        let operator_kubeconfig =
            cluster.service_account_kubeconfig(OPERATOR_NS, "ecs-vnc-operator");
        Shared {
            cluster,
            operator_kubeconfig,
        }
    })
}

/// The AccessKey of `examples/credentials-secret.yaml` (placeholders) as an ecs-sim account, so
/// the examples can be applied exactly as they are shipped.
fn example_account() -> SimAccount {
    let path = root().join("examples/credentials-secret.yaml");
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

/// `examples/<file>` from the project root.
pub fn example(file: &str) -> PathBuf {
    root().join("examples").join(file)
}

pub struct Env {
    pub ns: String,
    pub sim: SimHandle,
    pub client: kube::Client,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Env {
    /// A fresh namespace `e2e-<hint>-<n>` with Secret `ecs-credentials` for the sim's account.
    pub async fn new(hint: &str) -> Env {
        let shared = tokio::task::spawn_blocking(shared).await.unwrap();
        let ns = format!(
            "e2e-{hint}-{}-{}",
            std::process::id() % 10_000,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let client = Cluster::client_from(&shared.cluster.kubeconfig).await;
        let config = SimConfig::demo();
        // The shipped examples must work against ecs-sim as they are.
        assert!(
            config.accounts.contains(&example_account()),
            "ecs-sim's demo accounts lack the key of examples/credentials-secret.yaml"
        );
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let env = Env { ns, sim, client };
        env.kubectl_ok(&["create", "namespace", &env.ns]);
        env.create_secret("ecs-credentials", SIM_KEY_ID, SIM_KEY_SECRET);
        env
    }

    pub fn cluster(&self) -> &'static Cluster {
        &shared().cluster
    }

    pub fn kubeconfig(&self) -> &'static Path {
        &shared().cluster.kubeconfig
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
        shared().cluster.kubectl(args)
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
        let mut child = Command::new(kubectl())
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

    /// A session for the demo Linux instance with the namespace's Secret, plus `extra` spec fields.
    pub fn session(&self, name: &str, extra: Value) -> Value {
        let mut spec = json!({
            "regionId": "cn-hangzhou", "instanceId": LINUX,
            "credentialsRef": {"name": "ecs-credentials"}, "reason": "e2e test",
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                spec.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
               "metadata": {"name": name, "namespace": self.ns}, "spec": spec})
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

    /// Waits (bounded) until the session satisfies `pred`; panics with its last state otherwise.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&VncSession) -> bool,
    ) -> VncSession {
        let cond = move |obj: Option<&VncSession>| obj.is_some_and(&pred);
        let api = self.api();
        match tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(api.clone(), name, cond),
        )
        .await
        {
            Ok(Ok(Some(obj))) => obj,
            other => {
                let last = api.get_opt(name).await.ok().flatten();
                panic!(
                    "{name}: condition not met within {timeout:?} ({other:?}); last state: {:#?}",
                    last.map(|s| s.status)
                );
            }
        }
    }

    pub async fn wait_phase(&self, name: &str, phase: &str, timeout: Duration) -> VncSession {
        let phase = phase.to_owned();
        self.wait_for(name, timeout, move |s| {
            s.status
                .as_ref()
                .and_then(|st| st.phase)
                .map(|p| p.as_str())
                == Some(phase.as_str())
        })
        .await
    }

    /// Sets the refresh annotation to `value` and waits until the operator has served it.
    pub async fn refresh_and_wait(&self, name: &str, value: &str, timeout: Duration) -> VncSession {
        self.request_refresh(name, value).await;
        let value = value.to_owned();
        self.wait_for(name, timeout, move |s| {
            s.status
                .as_ref()
                .and_then(|st| st.observed_refresh.as_deref())
                == Some(value.as_str())
        })
        .await
    }

    pub async fn request_refresh(&self, name: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {"ecsvnc.dev/refresh": value}}});
        self.api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Starts an operator for this namespace as the `deploy/` ServiceAccount.
    pub fn operator(&self, extra: &[&str]) -> Operator {
        self.operator_logging(extra, "json", DEBUG_LOGS)
    }

    /// [`Env::operator`] with another `--log-format` and `RUST_LOG`.
    pub fn operator_logging(&self, extra: &[&str], format: &str, rust_log: &str) -> Operator {
        let kubeconfig = &shared().operator_kubeconfig;
        Operator::start(
            &self.ns,
            &self.sim.endpoint(),
            extra,
            format,
            rust_log,
            kubeconfig,
        )
    }

    /// [`Env::operator`] with another identity (a kubeconfig, e.g. another ServiceAccount's).
    pub fn operator_as(&self, kubeconfig: &Path, extra: &[&str]) -> Operator {
        Operator::start(
            &self.ns,
            &self.sim.endpoint(),
            extra,
            "json",
            DEBUG_LOGS,
            kubeconfig,
        )
    }

    /// [`Env::operator`] with extra environment variables (e.g. libfaketime's).
    pub fn operator_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        let kubeconfig = &shared().operator_kubeconfig;
        Operator::start_with_env(&self.ns, &self.sim.endpoint(), extra, kubeconfig, env)
    }

    /// An operator that watches every namespace, talking to `endpoint`: only for a test binary
    /// with a single test, since it serves every namespace of the shared control plane.
    pub fn operator_everywhere(
        &self,
        endpoint: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let kubeconfig = &shared().operator_kubeconfig;
        Operator::spawn("", endpoint, extra, "json", DEBUG_LOGS, kubeconfig, env)
    }

    /// [`Env::operator`] with the sim's AccessKey as the operator's own credentials (env vars).
    pub fn operator_with_own_credentials(&self, extra: &[&str]) -> Operator {
        self.operator_with_env(
            extra,
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", SIM_KEY_ID),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SIM_KEY_SECRET),
            ],
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = Command::new(kubectl())
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn kubectl() -> &'static str {
    if Path::new("/usr/bin/kubectl").exists() {
        "/usr/bin/kubectl"
    } else {
        "kubectl"
    }
}

/// The operator's own debug logs, without the HTTP stack's.
pub const DEBUG_LOGS: &str = "debug,hyper=info,tower=info,rustls=info,kube_client=info";

/// An `ecs-vnc-operator run` process; its stderr (the logs) goes to a file. Killed on drop.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    fn start(
        ns: &str,
        endpoint: &str,
        extra: &[&str],
        format: &str,
        rust_log: &str,
        kubeconfig: &Path,
    ) -> Operator {
        Self::spawn(ns, endpoint, extra, format, rust_log, kubeconfig, &[])
    }

    fn start_with_env(
        ns: &str,
        endpoint: &str,
        extra: &[&str],
        kubeconfig: &Path,
        env: &[(&str, &str)],
    ) -> Operator {
        Self::spawn(ns, endpoint, extra, "json", DEBUG_LOGS, kubeconfig, env)
    }

    fn spawn(
        ns: &str,
        endpoint: &str,
        extra: &[&str],
        format: &str,
        rust_log: &str,
        kubeconfig: &Path,
        env: &[(&str, &str)],
    ) -> Operator {
        let shared = shared();
        let log = shared.cluster.dir.join(format!(
            "operator-{ns}-{}.log",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::File::create(&log).unwrap();
        // An empty namespace: every namespace (the only operator of its test binary).
        let watch: &[&str] = if ns.is_empty() {
            &[]
        } else {
            &["--watch-namespace", ns]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_ecs-vnc-operator"))
            .arg("run")
            .args(watch)
            .args([
                "--ecs-endpoint",
                endpoint,
                "--metrics-addr",
                "127.0.0.1:0",
                // Not the default 0.0.0.0:8081: tests run operators side by side.
                "--health-addr",
                "127.0.0.1:0",
                "--log-format",
                format,
            ])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", rust_log)
            .env("POD_NAMESPACE", OPERATOR_NS)
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env_remove("ALIBABA_CLOUD_OIDC_TOKEN_FILE")
            .env_remove("ALIBABA_CLOUD_ROLE_ARN")
            .env_remove("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")
            .env_remove("ALIBABA_CLOUD_ROLE_SESSION_NAME")
            .env_remove("ALIBABA_CLOUD_ECS_METADATA")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start ecs-vnc-operator");
        Operator { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address `--metrics-addr 127.0.0.1:0` was bound to, from the start-up log line.
    pub async fn metrics_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for line in self.logs().lines() {
                if line.contains("serving /metrics")
                    && let Ok(v) = serde_json::from_str::<Value>(line)
                    && let Some(addr) = v["addr"].as_str()
                {
                    return addr.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "operator never logged its metrics address:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (bounded) until `/readyz` on the metrics address answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let url = format!("http://{}/readyz", self.metrics_addr().await);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(answer) = http.get(&url).send().await
                && answer.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "operator not ready within {timeout:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.pid(), "TERM");
        self.wait(Duration::from_secs(30))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("operator did not exit within {timeout:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status();
}

/// User plus system CPU time of a whole process (all threads), from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which may itself contain spaces and parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_second: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Peak resident set size of a process (`VmHWM` in /proc/PID/status), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

/// Creates `objects` through the API (no kubectl, so no last-applied copy), `parallel` at a time;
/// panics on the first refusal. Each request is bounded (60 s).
pub async fn create_all<K>(api: &Api<K>, objects: Vec<K>, parallel: usize)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    use futures::StreamExt;
    let params = kube::api::PostParams::default();
    let results: Vec<_> = futures::stream::iter(objects)
        .map(|object| {
            let params = &params;
            async move {
                let name = object.meta().name.clone().unwrap_or_default();
                let created =
                    tokio::time::timeout(Duration::from_secs(60), api.create(params, &object));
                (name, created.await)
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    for (name, result) in results {
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("create {name}: {e}"),
            Err(_) => panic!("create {name}: no answer within 60 s"),
        }
    }
}
