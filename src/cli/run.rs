//! `ecs-vnc-operator run`: the controller. Every flag can also come from its environment variable.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::terms::Terms;
use crate::aliyun::sts::check_oidc_provider_arn;
use crate::aliyun::{
    AllowedEndpoints, ClientOptions, DEFAULT_CONSOLE_BASE, EcsClient, Endpoint,
    OperatorCredentials, ProviderOptions, Regions, RetryPolicy, StsClient, StsOptions,
};
use crate::controller::leader::{Elector, LeaseSettings};
use crate::controller::pacer::{Pacer, PacerConfig};
use crate::controller::{self, Context, OperatorCredentialsScope, Settings};
use crate::session::expiry::Limits;
use crate::session::validate;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::server::{self, Probe};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// ECS endpoint for every session without spec.endpoint (http:// or https://).
    #[arg(long, env = "ECS_VNC_ENDPOINT", value_name = "URL")]
    pub ecs_endpoint: Option<String>,
    /// Endpoints a session's spec.endpoint (or its region) may send signed requests to:
    /// comma-separated scheme://host[:port] patterns, a leading *. matching any subdomain.
    /// --ecs-endpoint is always allowed. Default: ECS's own hosts for known regions,
    /// https://ecs.<region>.aliyuncs.com and https://ecs-vpc.<region>.aliyuncs.com, and the
    /// official SDK's per-region overrides.
    #[arg(long, env = "ECS_VNC_ALLOWED_ENDPOINTS", value_name = "PATTERNS",
          value_parser = AllowedEndpoints::parse)]
    pub allowed_endpoints: Option<AllowedEndpoints>,
    /// Regions newer than the official SDK's region table (comma-separated region ids); a
    /// session naming any other region fails with InvalidRegionId. Default none.
    #[arg(long, env = "ECS_VNC_EXTRA_REGIONS", value_name = "REGIONS", default_value = "",
          hide_default_value = true, value_parser = Regions::parse)]
    pub extra_regions: Regions,
    /// Namespaces whose sessions may use the operator's own credentials (comma-separated, or *
    /// for all); default none.
    #[arg(long, env = "ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES", value_name = "NAMESPACES",
          default_value = "", hide_default_value = true,
          value_parser = OperatorCredentialsScope::parse)]
    pub operator_credentials_namespaces: OperatorCredentialsScope,
    /// STS endpoint for AssumeRoleWithOIDC (RRSA and keyless sessions); default the official one.
    #[arg(long, env = "ECS_VNC_STS_ENDPOINT", value_name = "URL")]
    pub sts_endpoint: Option<String>,
    /// The cluster's RRSA OIDC provider (acs:ram::<account id>:oidc-provider/<name>): with
    /// --keyless-sessions, keyless sessions (spec.serviceAccountRef) exchange their
    /// ServiceAccount tokens through STS for the role in their ecsvnc.dev/role-arn annotation.
    #[arg(long, env = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", value_name = "ARN",
          value_parser = oidc_provider_arn)]
    pub oidc_provider_arn: Option<String>,
    /// Serve spec.serviceAccountRef (needs --oidc-provider-arn too; operator RRSA sets that ARN
    /// and alone does not turn keyless sessions on).
    /// The environment variable takes true/false, 1/0, yes/no, on/off.
    #[arg(long, env = "ECS_VNC_KEYLESS_SESSIONS", num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", hide_default_value = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub keyless_sessions: bool,
    /// How long a URL opens connections after it is issued.
    #[arg(long, env = "ECS_VNC_URL_VALIDITY", default_value = "15s", value_parser = duration)]
    pub url_validity: Duration,
    /// How long an idle console connection lives after the URL window.
    #[arg(long, env = "ECS_VNC_SESSION_KEEPALIVE", default_value = "300s", value_parser = duration)]
    pub session_keepalive: Duration,
    /// Console page the VncUrl is handed to.
    #[arg(long, env = "ECS_VNC_CONSOLE_BASE_URL", value_name = "URL", default_value = DEFAULT_CONSOLE_BASE)]
    pub console_base_url: String,
    /// Console URLs per minute per instance, across all sessions (ECS allows 30).
    #[arg(long, env = "ECS_VNC_RECONNECT_LIMIT_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub reconnect_limit_per_minute: u32,
    /// Only watch VncSessions (and Secrets) in this namespace.
    #[arg(long, env = "ECS_VNC_WATCH_NAMESPACE", value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Log format: text for people, json for collectors.
    #[arg(long, env = "ECS_VNC_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "ECS_VNC_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Address of /healthz and /readyz alone, for probes: connection slots of their own, which
    /// clients of --metrics-addr cannot take. Empty: off.
    #[arg(long, env = "ECS_VNC_HEALTH_ADDR", default_value = "0.0.0.0:8081",
          value_parser = listen_addr)]
    // Spelled out so that clap hands "" to `listen_addr` rather than making the flag optional.
    pub health_addr: ::std::option::Option<SocketAddr>,
    /// Reconcile only while holding the Lease (run several replicas, one active).
    /// The environment variable takes true/false, 1/0, yes/no, on/off.
    #[arg(long, env = "ECS_VNC_LEADER_ELECT", num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", hide_default_value = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "ECS_VNC_LEASE_NAME", default_value = "ecs-vnc-operator")]
    pub lease_name: String,
    /// Namespace of the leader Lease (in a pod: its own namespace, from the downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// A standby takes over this long after the leader stops renewing.
    #[arg(long, env = "ECS_VNC_LEASE_DURATION", default_value = "15s", value_parser = duration)]
    pub lease_duration: Duration,
    /// Reconciles in flight at once. Each holds a connection to the API server (and one to ECS)
    /// while it runs; this bounds the operator's connections and memory under a burst.
    #[arg(long, env = "ECS_VNC_MAX_CONCURRENT_RECONCILES", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_concurrent_reconciles: u16,
    /// ECS calls per second per AccessKeyId and region (ECS's account flow control): halved on a
    /// Throttling answer, regained gradually. 0 turns pacing off.
    #[arg(long, env = "ECS_VNC_ECS_REQUESTS_PER_SECOND",
          default_value_t = controller::pacer::DEFAULT_REQUESTS_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub ecs_requests_per_second: u32,
    /// Longest wait for in-flight reconciles (and their ECS calls) after SIGTERM.
    #[arg(long, env = "ECS_VNC_SHUTDOWN_GRACE", default_value = "20s", value_parser = duration)]
    pub shutdown_grace: Duration,
}

fn oidc_provider_arn(value: &str) -> Result<String, String> {
    let value = value.trim();
    check_oidc_provider_arn(value).map(|()| value.to_owned())
}

/// A listen address, or none for the empty value (the listener is off).
fn listen_addr(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| format!("{value:?}: {e}"))
}

/// Durations like `15s`, `300s`, `5m`, `1h30m`; zero is refused as such.
fn duration(value: &str) -> Result<Duration, String> {
    let zero = !value.is_empty()
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().all(|c| c == '0' || "smhd".contains(c));
    if zero {
        return Err(format!("{value:?} must be greater than zero"));
    }
    validate::ttl(value).map_err(|e| e.replacen("ttl", "duration", 1))
}

pub async fn run(args: RunArgs) -> ExitCode {
    match start(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

/// From flags to a serving controller: each step fails with the flag or the service it names.
async fn start(args: RunArgs) -> Result<(), String> {
    let sts_endpoint = endpoints(&args)?;
    let credentials = operator_credentials(&args, &sts_endpoint)?;
    keyless_sessions(&args, &sts_endpoint)?;
    let metrics = Arc::new(Metrics::new());
    let probe = Arc::new(Probe::default());
    serve_telemetry(&args, &metrics, &probe).await?;

    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes (kubeconfig or in-cluster config): {e}"))?;
    let ecs = ecs_client(&metrics)?;
    let sts = StsClient::new(StsOptions::default()).map_err(|e| e.to_string())?;
    let pacing = PacerConfig::per_second(args.ecs_requests_per_second);
    let lease = args.leader_elect.then(|| LeaseSettings {
        name: args.lease_name.clone(),
        namespace: args.lease_namespace.clone(),
        identity: identity(),
        duration: args.lease_duration,
    });
    let grace = args.shutdown_grace;
    let settings = settings(args, credentials, sts_endpoint);
    // A fresh context for each term of service: the limiter seeds itself from the watch cache
    // (what another leader issued), and nothing is carried over from a term that was lost.
    let new_context = || {
        let mut ctx = Context::new(
            client.clone(),
            ecs.clone(),
            sts.clone(),
            settings.clone(),
            metrics.clone(),
        );
        ctx.pacer = Pacer::new(pacing);
        Arc::new(ctx)
    };
    let stop =
        super::shutdown::Signal::install().map_err(|e| format!("cannot watch for signals: {e}"))?;
    let terms = Terms {
        elector: lease.map(|lease| Elector::new(client.clone(), lease)),
        stop,
        probe,
        metrics: metrics.clone(),
        grace,
    };
    terms.serve(new_context).await
}

/// Checks `--ecs-endpoint` and resolves the STS endpoint (`--sts-endpoint` or the official one).
fn endpoints(args: &RunArgs) -> Result<Endpoint, String> {
    if let Some(url) = &args.ecs_endpoint {
        Endpoint::parse(url).map_err(|e| format!("--ecs-endpoint: {e}"))?;
    }
    Endpoint::resolve_sts(args.sts_endpoint.as_deref()).map_err(|e| format!("--sts-endpoint: {e}"))
}

/// The operator's own credentials from the environment, if any, and whom they are offered to.
fn operator_credentials(
    args: &RunArgs,
    sts_endpoint: &Endpoint,
) -> Result<Option<Arc<OperatorCredentials>>, String> {
    let credentials = OperatorCredentials::from_env(ProviderOptions::new(sts_endpoint.clone()))
        .map_err(|e| e.to_string())?
        .map(Arc::new);
    match (&credentials, &args.operator_credentials_namespaces) {
        (None, _) => tracing::info!(
            "no operator credentials in the environment; sessions need spec.credentialsRef \
             or spec.serviceAccountRef"
        ),
        (Some(c), OperatorCredentialsScope::Nowhere) => tracing::warn!(
            source = %c.describe(),
            "operator credentials are set but offered to no namespace \
             (--operator-credentials-namespaces); sessions need spec.credentialsRef or \
             spec.serviceAccountRef"
        ),
        (Some(c), _) => tracing::info!(source = %c.describe(), "operator credentials"),
    }
    Ok(credentials)
}

/// `--keyless-sessions` needs the cluster's OIDC provider to exchange tokens with.
fn keyless_sessions(args: &RunArgs, sts_endpoint: &Endpoint) -> Result<(), String> {
    match (args.keyless_sessions, &args.oidc_provider_arn) {
        (true, Some(arn)) => {
            tracing::info!(provider = %arn, sts = %sts_endpoint, "keyless sessions on")
        }
        (true, None) => {
            return Err("--keyless-sessions needs --oidc-provider-arn \
                        (ALIBABA_CLOUD_OIDC_PROVIDER_ARN), the cluster's RRSA OIDC provider"
                .to_owned());
        }
        (false, _) => tracing::info!("keyless sessions off (no --keyless-sessions)"),
    }
    Ok(())
}

fn ecs_client(metrics: &Arc<Metrics>) -> Result<EcsClient, String> {
    EcsClient::new(ClientOptions {
        // One attempt per call: every attempt may issue a URL, so each must pass the
        // per-instance limiter; the controller's own backoff does the retrying.
        retry: RetryPolicy {
            max_attempts: 1,
            deadline: Duration::from_secs(10),
            ..RetryPolicy::default()
        },
        // ECS answers a connect within milliseconds; a host that swallows SYNs (a session
        // author's endpoint) should hold a slot for seconds, not the whole deadline.
        connect_timeout: Duration::from_secs(3),
        observer: metrics.ecs_observer(),
        ..ClientOptions::default()
    })
    .map_err(|e| e.to_string())
}

/// What every reconcile reads, from the flags.
fn settings(
    args: RunArgs,
    credentials: Option<Arc<OperatorCredentials>>,
    sts_endpoint: Endpoint,
) -> Settings {
    Settings {
        limits: Limits {
            url_validity: args.url_validity,
            session_keepalive: args.session_keepalive,
        },
        console_base_url: args.console_base_url,
        reconnect_limit_per_minute: args.reconnect_limit_per_minute,
        ecs_endpoint: args.ecs_endpoint,
        allowed_endpoints: args
            .allowed_endpoints
            .unwrap_or_else(|| AllowedEndpoints::ecs_defaults(&args.extra_regions)),
        regions: args.extra_regions,
        credentials,
        oidc_provider_arn: args.oidc_provider_arn,
        keyless_sessions: args.keyless_sessions,
        sts_endpoint,
        operator_credentials_scope: args.operator_credentials_namespaces,
        watch_namespace: args.watch_namespace,
        max_concurrent_reconciles: args.max_concurrent_reconciles,
    }
}

/// The metrics server and, unless `--health-addr` is empty, the probes' own listener. Both bind
/// before anything else starts, so a busy port fails at start-up.
async fn serve_telemetry(
    args: &RunArgs,
    metrics: &Arc<Metrics>,
    probe: &Arc<Probe>,
) -> Result<(), String> {
    let bound = server::start(args.metrics_addr, metrics.clone(), probe.clone())
        .await
        .map_err(|e| format!("--metrics-addr {}: {e}", args.metrics_addr))?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    if let Some(addr) = args.health_addr {
        let bound = server::start_health(addr, probe.clone())
            .await
            .map_err(|e| format!("--health-addr {addr}: {e}"))?;
        tracing::info!(addr = %bound, "serving /healthz and /readyz for probes");
    }
    Ok(())
}

/// The Lease holder's name: the pod name in a cluster, else host and a random suffix.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ecs-vnc-operator".to_owned());
        format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
    })
}
