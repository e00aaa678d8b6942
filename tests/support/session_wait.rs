//! Waiting for a test's sessions: until a condition holds, a phase is reached, or a refresh is
//! served; and asking for a refresh.

use std::time::Duration;

use ecs_vnc_operator::session::VncSession;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::env::Env;
use super::operator::Operator;
use super::session_status::{observed_refresh, phase};

/// How long an end-to-end test waits for the operator to act on a session.
pub const WAIT: Duration = Duration::from_secs(30);

impl Env {
    /// A fresh namespace `e2e-<hint>-<n>`, its operator, and the Linux session `name`
    /// (`isWindows: false`) served Ready: where most tests of a served session start.
    pub async fn with_ready_session(hint: &str, name: &str) -> (Env, Operator, VncSession) {
        let env = Env::new(hint).await;
        let operator = env.operator(&[]);
        let ready = env.apply_ready(name, json!({"isWindows": false})).await;
        (env, operator, ready)
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

    pub async fn wait_phase(&self, name: &str, wanted: &str, timeout: Duration) -> VncSession {
        let wanted = wanted.to_owned();
        self.wait_for(name, timeout, move |s| phase(s) == wanted)
            .await
    }

    /// Applies [`Env::session`]`(name, extra)` and waits ([`WAIT`]) until it is Ready.
    pub async fn apply_ready(&self, name: &str, extra: Value) -> VncSession {
        self.apply_ok(&self.session(name, extra));
        self.wait_phase(name, "Ready", WAIT).await
    }

    /// Sets the refresh annotation to `value` and waits until the operator has served it.
    pub async fn refresh_and_wait(&self, name: &str, value: &str, timeout: Duration) -> VncSession {
        self.request_refresh(name, value).await;
        self.wait_served(name, value, timeout).await
    }

    /// Waits until the operator has served refresh `value`.
    pub async fn wait_served(&self, name: &str, value: &str, timeout: Duration) -> VncSession {
        let value = value.to_owned();
        self.wait_for(name, timeout, move |s| {
            observed_refresh(s) == Some(value.as_str())
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
}
