//! What every reconcile shares: clients, settings, the per-instance limiter, the Event series.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use super::credentials::{
    Keyless, Operator, OperatorCredentialsScope, SecretCache, ServiceAccountCache, Sources,
};
use super::fairness::NamespaceSlots;
use super::limiter::Limiter;
use super::pacer::Pacer;
use super::stopping::Stopping;
use super::superseded::Superseded;
use super::unwritten::Unwritten;
use super::write::events::SeriesCache;
use crate::aliyun::{
    AllowedEndpoints, EcsClient, Endpoint, OperatorCredentials, Regions, StsClient,
};
use crate::session::VncSession;
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
    /// The regions a session may name: the official SDK's table and `--extra-regions`.
    pub regions: Regions,
    /// The operator's own credentials (an AccessKey, RRSA or the instance's RAM role), for
    /// sessions that name neither a Secret nor a ServiceAccount.
    pub credentials: Option<Arc<OperatorCredentials>>,
    /// `--oidc-provider-arn`: turns on keyless sessions (`spec.serviceAccountRef`).
    pub oidc_provider_arn: Option<String>,
    /// `--keyless-sessions`: `spec.serviceAccountRef` is served only with it and the provider
    /// ARN (operator RRSA sets that ARN too, and alone must not turn keyless sessions on).
    pub keyless_sessions: bool,
    /// `--sts-endpoint`, where token exchanges go.
    pub sts_endpoint: Endpoint,
    /// The namespaces offered the operator's own credentials.
    pub operator_credentials_scope: OperatorCredentialsScope,
    pub watch_namespace: Option<String>,
    /// Reconciles in flight at once (see `run`).
    pub max_concurrent_reconciles: u16,
}

pub struct Context {
    pub client: kube::Client,
    pub ecs: EcsClient,
    pub sts: StsClient,
    pub settings: Settings,
    pub limiter: Limiter,
    /// ECS calls in flight per namespace, so one namespace cannot hold every reconcile slot.
    pub namespace_slots: NamespaceSlots,
    /// ECS calls per (AccessKeyId, region); off unless `run` sets it (`--ecs-requests-per-second`).
    pub pacer: Pacer,
    /// Events published lately, so a repeat becomes a series (see `write::events`).
    pub events: SeriesCache,
    pub metrics: Arc<Metrics>,
    /// Consecutive shell errors per object, for per-object backoff in `error_policy`.
    pub failures: Mutex<HashMap<String, u32>>,
    /// Secret versions from the metadata watch and the credentials last read from them.
    pub secrets: SecretCache,
    /// ServiceAccount versions and role annotations, and the STS credentials exchanged for them.
    pub service_accounts: ServiceAccountCache,
    /// Cached session versions this process has already written over.
    pub superseded: Superseded,
    /// Outcomes of ECS calls whose status write failed, written by the next reconcile.
    pub unwritten: Unwritten,
    /// Set at shutdown: no new ECS call starts.
    pub stopping: Stopping,
    /// The sessions' watch cache, once `run` has started it (the limiter seeds from it).
    pub sessions: OnceLock<Store<VncSession>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        ecs: EcsClient,
        sts: StsClient,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            events: SeriesCache::default(),
            limiter: Limiter::new(settings.reconnect_limit_per_minute),
            namespace_slots: NamespaceSlots::new(settings.max_concurrent_reconciles),
            pacer: Pacer::off(),
            client,
            ecs,
            sts,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            secrets: SecretCache::default(),
            service_accounts: ServiceAccountCache::default(),
            superseded: Superseded::default(),
            unwritten: Unwritten::default(),
            stopping: Stopping::default(),
            sessions: OnceLock::new(),
        }
    }

    /// What the credentials room looks a session's credentials up with.
    pub fn credential_sources(&self) -> Sources<'_> {
        let settings = &self.settings;
        Sources {
            client: &self.client,
            secrets: &self.secrets,
            operator: Operator {
                own: settings.credentials.as_ref(),
                scope: &settings.operator_credentials_scope,
            },
            keyless: Keyless {
                on: settings.keyless_sessions,
                provider: settings.oidc_provider_arn.as_deref(),
                client: &self.client,
                service_accounts: &self.service_accounts,
                sts: &self.sts,
                sts_endpoint: &settings.sts_endpoint,
                metrics: &self.metrics,
            },
        }
    }

    /// Drops what is kept per session once it is deleted.
    pub fn forget_session(&self, session: &VncSession) {
        self.clear_failures(&session_key(session));
        if let Some(uid) = &session.metadata.uid {
            self.superseded.forget(uid);
            self.unwritten.forget(uid);
        }
    }

    /// After a re-list (which reports no deletions): keeps bookkeeping for live sessions only.
    pub fn retain_sessions(&self, live: &[Arc<VncSession>]) {
        let uids: HashSet<&str> = live
            .iter()
            .filter_map(|s| s.metadata.uid.as_deref())
            .collect();
        let keys: HashSet<String> = live.iter().map(|s| session_key(s)).collect();
        self.superseded.retain(|uid| uids.contains(uid));
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| keys.contains(key));
    }

    /// When the sessions in the watch cache say URLs were last issued for this instance: what a
    /// fresh limiter must assume was already spent (another replica's or an earlier process's).
    pub fn recent_issues(&self, region_id: &str, instance_id: &str) -> Vec<Timestamp> {
        let Some(store) = self.sessions.get() else {
            return Vec::new();
        };
        store
            .state()
            .iter()
            .filter(|s| s.spec.region_id == region_id && s.spec.instance_id == instance_id)
            .filter_map(|s| s.status.as_ref()?.issued_at.as_ref().map(|t| t.0))
            .collect()
    }

    /// Counts one more shell error for `key` and returns the count.
    pub fn record_failure(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    #[cfg(test)]
    pub fn failures_len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn clear_failures(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// `namespace/name`, the key of per-session shell bookkeeping.
pub fn session_key(session: &VncSession) -> String {
    format!(
        "{}/{}",
        session.namespace().unwrap_or_default(),
        session.name_any()
    )
}
