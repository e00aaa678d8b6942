//! What every reconcile shares: clients, settings, the per-instance limiter, Event recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::runtime::events::{Recorder, Reporter};

use super::credential_scope::OperatorCredentialsScope;
use super::limiter::Limiter;
use crate::aliyun::{AllowedEndpoints, Credentials, EcsClient};
use crate::session::expiry::Limits;
use crate::telemetry::metrics::Metrics;

/// The operator's configuration, from `run`'s flags.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: Limits,
    pub console_base_url: String,
    pub reconnect_limit_per_minute: u32,
    /// `--ecs-endpoint`: wins over the per-region default, loses to `spec.endpoint`.
    pub ecs_endpoint: Option<String>,
    /// Where signed requests may go (`--allowed-endpoints`); `ecs_endpoint` is always allowed.
    pub allowed_endpoints: AllowedEndpoints,
    /// The operator's own credentials, for sessions without `credentialsRef`.
    pub credentials: Option<Credentials>,
    /// The namespaces offered the operator's own credentials.
    pub operator_credentials_scope: OperatorCredentialsScope,
    pub watch_namespace: Option<String>,
    /// Reconciles in flight at once (see `run`).
    pub max_concurrent_reconciles: u16,
}

pub struct Context {
    pub client: kube::Client,
    pub ecs: EcsClient,
    pub settings: Settings,
    pub limiter: Limiter,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive shell errors per object, for per-object backoff in `error_policy`.
    pub failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        ecs: EcsClient,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: super::MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            limiter: Limiter::new(settings.reconnect_limit_per_minute),
            client,
            ecs,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one more shell error for `key` and returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    pub fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}
