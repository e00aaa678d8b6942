//! `ecs-sim`: serves a simulated ECS RPC endpoint (see `ecs_vnc_operator::sim`).
//!
//! The first stdout line is exactly `ecs-sim listening on http://IP:PORT`; logs go to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ecs_vnc_operator::sim::{self, SimAccount, SimConfig, SimInstance};

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
        Ok(config) => config,
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
fn build_config(args: &Args) -> Result<SimConfig, String> {
    let mut config = match &args.config {
        Some(path) => SimConfig::from_file(path).map_err(|e| e.to_string())?,
        None if args.instances.is_empty() && args.access_keys.is_empty() => SimConfig::demo(),
        None => SimConfig::default(),
    };
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
    Ok(config)
}

async fn serve(config: SimConfig, listen: SocketAddr, account_qps: Option<u32>) -> ExitCode {
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
        "configuration loaded"
    );
    let handle = match sim::start(config, listen).await {
        Ok(handle) => handle,
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
