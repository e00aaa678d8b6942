//! `ecs-sim`: serves a simulated ECS RPC endpoint (see `ecs_vnc_operator::sim`).
//!
//! The first stdout line is exactly `ecs-sim listening on http://IP:PORT`; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ecs_vnc_operator::sim::{
    self, KeylessConfig, MetadataRole, OidcProvider, RoleInstances, SimAccount, SimConfig,
    SimInstance, SimRole,
};

#[derive(Parser)]
#[command(
    name = "ecs-sim",
    about = "A protocol-faithful Alibaba Cloud ECS endpoint for tests and demos"
)]
struct Args {
    /// Address to bind (port 0 picks a free port).
    #[arg(long, env = "ECS_SIM_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// YAML or JSON config (camelCase fields of SimConfig). Flags below add to it.
    #[arg(long, env = "ECS_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Adds an instance: ID:REGION:STATUS:OSTYPE, e.g. i-bp1abc:cn-hangzhou:Running:linux.
    #[arg(long = "instance", value_name = "ID:REGION:STATUS:OSTYPE")]
    instances: Vec<SimInstance>,
    /// Adds an AccessKey: ID:SECRET, or ID:SECRET:TOKEN for an STS one. Parsed after clap so
    /// that a malformed value (which holds a secret) is never echoed in an error.
    #[arg(long = "access-key", value_name = "ID:SECRET[:TOKEN]")]
    access_keys: Vec<String>,
    /// Successful DescribeInstanceVncUrl calls allowed per instance per sliding minute.
    #[arg(long)]
    reconnect_limit_per_minute: Option<u32>,
    /// ECS's account flow control: requests per second per AccessKeyId and region, across all
    /// actions, answered Throttling.User beyond it. Off by default (also with 0).
    #[arg(long, value_name = "N")]
    account_qps_per_region: Option<u32>,
    /// STS AssumeRoleWithOIDC: the `iss` a token must carry (the cluster's
    /// --service-account-issuer).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://kubernetes.default.svc"
    )]
    oidc_issuer: String,
    /// STS AssumeRoleWithOIDC: the OIDCProviderArn callers must pass,
    /// acs:ram::<uid>:oidc-provider/<name>. Needs --oidc-public-key.
    #[arg(long, value_name = "ARN")]
    oidc_provider_arn: Option<String>,
    /// STS AssumeRoleWithOIDC: the key tokens are verified with (RS256): a PEM file ("PUBLIC KEY"
    /// such as the cluster's pki/sa.pub, or "RSA PUBLIC KEY") or a JWKS JSON file.
    #[arg(long, value_name = "FILE")]
    oidc_public_key: Option<PathBuf>,
    /// A RAM role and the token subjects it trusts, e.g.
    /// acs:ram::1234567890:role/team-a=system:serviceaccount:team-a:opener. Repeatable.
    #[arg(long = "role", value_name = "ARN=SUBJECT[,SUBJECT...]")]
    roles: Vec<SimRole>,
    /// Limits a --role's credentials to these instances (Forbidden.RAM for others). Repeatable.
    #[arg(long = "role-instances", value_name = "ARN=INSTANCE[,INSTANCE...]")]
    role_instances: Vec<String>,
    /// Lifetime of issued STS and metadata credentials (and the cap on DurationSeconds), e.g.
    /// 30s, 5m, 1h or plain seconds. Default 1h.
    #[arg(long, value_name = "DURATION", value_parser = parse_lifetime)]
    sts_lifetime: Option<u64>,
    /// An instance RAM role served at /latest/meta-data/ram/security-credentials/NAME
    /// (IMDSv2), optionally limited to some instances. Repeatable.
    #[arg(long = "metadata-role", value_name = "NAME[=INSTANCE,...]")]
    metadata_roles: Vec<MetadataRole>,
}

/// `30s`, `5m`, `1h` or plain seconds.
fn parse_lifetime(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?}: use seconds, or a number with s, m or h")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a positive duration"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = match build_config(&args) {
        Ok(configs) => configs,
        Err(message) => {
            eprintln!("ecs-sim: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ecs-sim: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, args.listen, args.account_qps_per_region))
}

/// The file (if any), else the demo cloud unless instances or keys are given; flags add to it.
fn build_config(args: &Args) -> Result<(SimConfig, KeylessConfig), String> {
    let (mut config, mut keyless) = match &args.config {
        Some(path) => sim::load_config_file(path).map_err(|e| e.to_string())?,
        None if args.instances.is_empty() && args.access_keys.is_empty() => {
            (SimConfig::demo(), KeylessConfig::default())
        }
        None => (SimConfig::default(), KeylessConfig::default()),
    };
    add_keyless_flags(args, &mut keyless)?;
    config.instances.extend(args.instances.iter().cloned());
    for (n, text) in args.access_keys.iter().enumerate() {
        let account: SimAccount = text
            .parse()
            .map_err(|message| format!("--access-key #{}: {message}", n + 1))?;
        config.accounts.push(account);
    }
    if let Some(limit) = args.reconnect_limit_per_minute {
        config.reconnect_limit_per_minute = limit;
    }
    if config.accounts.is_empty() {
        // Instances alone are still usable with the documented demo key.
        config.accounts = SimConfig::demo().accounts;
    }
    config.validate()?;
    keyless.validate()?;
    Ok((config, keyless))
}

fn add_keyless_flags(args: &Args, keyless: &mut KeylessConfig) -> Result<(), String> {
    match (&args.oidc_provider_arn, &args.oidc_public_key) {
        (Some(arn), Some(file)) => {
            keyless.oidc = Some(OidcProvider {
                issuer: args.oidc_issuer.clone(),
                provider_arn: arn.clone(),
                public_key_file: file.clone(),
            });
        }
        (None, None) => {}
        _ => return Err("--oidc-provider-arn and --oidc-public-key go together".to_owned()),
    }
    keyless.roles.extend(args.roles.iter().cloned());
    for text in &args.role_instances {
        let RoleInstances { arn, instances } = text.parse()?;
        let role = keyless
            .roles
            .iter_mut()
            .find(|role| role.arn == arn)
            .ok_or_else(|| format!("--role-instances names {arn}, which no --role defines"))?;
        role.instances = Some(instances);
    }
    if let Some(seconds) = args.sts_lifetime {
        keyless.sts_lifetime_seconds = seconds;
    }
    keyless
        .metadata_roles
        .extend(args.metadata_roles.iter().cloned());
    Ok(())
}

async fn serve(
    (config, keyless): (SimConfig, KeylessConfig),
    listen: SocketAddr,
    account_qps: Option<u32>,
) -> ExitCode {
    let accounts: Vec<&str> = config
        .accounts
        .iter()
        .map(|a| a.access_key_id.as_str())
        .collect();
    tracing::info!(
        access_key_ids = ?accounts,
        instances = config.instances.len(),
        reconnect_limit_per_minute = config.reconnect_limit_per_minute,
        account_qps_per_region = account_qps.filter(|&n| n > 0),
        oidc_provider = keyless.oidc.as_ref().map(|o| o.provider_arn.as_str()),
        roles = keyless.roles.len(),
        sts_lifetime_seconds = keyless.sts_lifetime_seconds,
        metadata_roles = keyless.metadata_roles.len(),
        "configuration loaded"
    );
    let handle = match sim::start_with_keyless(config, keyless, listen).await {
        Ok(handle) => handle,
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
            eprintln!("ecs-sim: {error}");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("ecs-sim: cannot listen on {listen}: {error}");
            return ExitCode::FAILURE;
        }
    };
    handle.set_account_quota(account_qps);
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "ecs-sim listening on {}", handle.endpoint())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody reads stdout any more; keep serving, the logs still go to stderr.
        tracing::warn!("could not write the listening line to stdout");
    }
    drop(stdout);
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
