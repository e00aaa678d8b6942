//! An `ecs-vnc-operator run` process of a test: started for an [`Env`] (its namespace, its
//! ecs-sim, as the `deploy/` ServiceAccount) or for every namespace, with its logs in a file;
//! its addresses, readiness and exit. Killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ecs_sim::{SIM_KEY_ID, SIM_KEY_SECRET};
use super::env::{COUNTER, Env};
use super::http;
use super::processes::{CREDENTIAL_VARS, signal};
use super::shared_cluster::{OPERATOR_NS, cluster, operator_kubeconfig};
use super::waiting::poll;

/// The operator's own debug logs, without the HTTP stack's.
pub const DEBUG_LOGS: &str = "debug,hyper=info,tower=info,rustls=info,kube_client=info";

/// How to start one operator.
struct Launch<'a> {
    /// The namespace to watch; `None`: every namespace.
    watch: Option<&'a str>,
    endpoint: String,
    extra: &'a [&'a str],
    log_format: &'a str,
    rust_log: &'a str,
    kubeconfig: &'a Path,
    env: &'a [(&'a str, &'a str)],
}

impl Env {
    /// This namespace's operator as the `deploy/` ServiceAccount, JSON debug logs.
    fn launch<'a>(&'a self, extra: &'a [&'a str]) -> Launch<'a> {
        Launch {
            watch: Some(&self.ns),
            endpoint: self.sim.endpoint(),
            extra,
            log_format: "json",
            rust_log: DEBUG_LOGS,
            kubeconfig: operator_kubeconfig(),
            env: &[],
        }
    }

    /// Starts an operator for this namespace as the `deploy/` ServiceAccount.
    pub fn operator(&self, extra: &[&str]) -> Operator {
        Operator::spawn(self.launch(extra))
    }

    /// [`Env::operator`] with another `--log-format` and `RUST_LOG`.
    pub fn operator_logging(&self, extra: &[&str], log_format: &str, rust_log: &str) -> Operator {
        Operator::spawn(Launch {
            log_format,
            rust_log,
            ..self.launch(extra)
        })
    }

    /// [`Env::operator`] with another identity (a kubeconfig, e.g. another ServiceAccount's).
    pub fn operator_as(&self, kubeconfig: &Path, extra: &[&str]) -> Operator {
        Operator::spawn(Launch {
            kubeconfig,
            ..self.launch(extra)
        })
    }

    /// [`Env::operator`] with extra environment variables (e.g. libfaketime's).
    pub fn operator_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        Operator::spawn(Launch {
            env,
            ..self.launch(extra)
        })
    }

    /// An operator that watches every namespace, talking to `endpoint`: only for a test binary
    /// with a single test, since it serves every namespace of the shared control plane.
    pub fn operator_everywhere(
        &self,
        endpoint: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        Operator::spawn(Launch {
            watch: None,
            endpoint: endpoint.to_owned(),
            env,
            ..self.launch(extra)
        })
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

/// An `ecs-vnc-operator run` process; its stderr (the logs) goes to a file. Killed on drop.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    fn spawn(launch: Launch) -> Operator {
        let log = cluster().dir.join(format!(
            "operator-{}-{}.log",
            launch.watch.unwrap_or(""),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::File::create(&log).unwrap();
        let watch = match launch.watch {
            Some(ns) => vec!["--watch-namespace", ns],
            None => Vec::new(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_ecs-vnc-operator"));
        command
            .arg("run")
            .args(watch)
            .args(["--ecs-endpoint", &launch.endpoint])
            .args(["--metrics-addr", "127.0.0.1:0"])
            // Not the default 0.0.0.0:8081: tests run operators side by side.
            .args(["--health-addr", "127.0.0.1:0"])
            .args(["--log-format", launch.log_format])
            .args(launch.extra)
            .env("KUBECONFIG", launch.kubeconfig)
            .env("RUST_LOG", launch.rust_log)
            .env("POD_NAMESPACE", OPERATOR_NS);
        for var in CREDENTIAL_VARS {
            command.env_remove(var);
        }
        let child = command
            .envs(launch.env.iter().copied())
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

    /// The `addr` of the first JSON log line that contains `message`, once it is logged (20 s).
    pub async fn logged_addr(&self, message: &str) -> String {
        let failure = || format!("operator never logged {message:?}:\n{}", self.logs());
        let probe = || async move {
            let logs = self.logs();
            let lines = logs.lines().filter(|line| line.contains(message));
            let mut values = lines.filter_map(|line| serde_json::from_str::<Value>(line).ok());
            values.find_map(|v| v["addr"].as_str().map(str::to_owned))
        };
        poll(
            Duration::from_secs(20),
            Duration::from_millis(100),
            failure,
            probe,
        )
        .await
    }

    /// The address `--metrics-addr 127.0.0.1:0` was bound to, from the start-up log line.
    pub async fn metrics_addr(&self) -> String {
        self.logged_addr("serving /metrics").await
    }

    /// The address `--health-addr 127.0.0.1:0` was bound to, from the start-up log line.
    pub async fn health_addr(&self) -> String {
        self.logged_addr("serving /healthz and /readyz for probes")
            .await
    }

    /// Waits (bounded) until `/readyz` on the metrics address answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let url = format!("http://{}/readyz", self.metrics_addr().await);
        let client = http::client_with_timeout(Duration::from_secs(5));
        let (client, url) = (&client, &url);
        let failure = || format!("operator not ready within {timeout:?}:\n{}", self.logs());
        let ready = || async move {
            let answer = client.get(url).send().await;
            answer.is_ok_and(|a| a.status().is_success()).then_some(())
        };
        poll(timeout, Duration::from_millis(100), failure, ready).await
    }

    /// Waits (bounded) until the log holds `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let failure = || {
            let logs = self.logs();
            format!("no {needle:?} in the log within {timeout:?}:\n{logs}")
        };
        let logged = || async move { self.logs().contains(needle).then_some(()) };
        poll(timeout, Duration::from_millis(200), failure, logged).await
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
