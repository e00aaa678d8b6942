//! `ecs-vnc-operator`: parses the command line, sets up logging, runs the subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ecs_vnc_operator::telemetry::{self, LogFormat};
use ecs_vnc_operator::{cli, session};

#[derive(Parser)]
#[command(name = "ecs-vnc-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the current kubeconfig or in-cluster config.
    Run(Box<cli::run::RunArgs>),
    /// Print the VncSession CRD as YAML.
    Crd,
    /// Issue one console URL straight from ECS (no cluster needed).
    Url(cli::url::UrlArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            telemetry::init(args.log_format, "info");
            cli::run::run(*args).await
        }
        Command::Crd => {
            print!("{}", session::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Url(args) => {
            telemetry::init(LogFormat::Text, "warn");
            cli::url::run(args).await
        }
    }
}
