//! Runs one `kubectl vnc` command: connect, dispatch, and turn an error into one message on
//! stderr and its exit code.

use std::io::Write;
use std::process::ExitCode;

use super::args::{Cli, Command};
use super::browser::SystemBrowser;
use super::connect::connect;
use super::error::Error;
use super::terminal::clean;
use super::{list, open, refresh, status};

pub async fn run(cli: Cli) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    match execute(cli, &mut out, &mut err).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            // The parts from the cluster are cleaned where they enter an error; this catches any
            // that were not, keeping the lines a multi-line error is meant to have.
            let text: Vec<String> = e.to_string().split('\n').map(clean).collect();
            let _ = writeln!(err, "error: {}", text.join("\n"));
            ExitCode::from(e.exit_code())
        }
    }
}

async fn execute(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Error> {
    let target = connect(&cli.global).await?;
    match cli.command {
        Command::Open(args) => open::execute(&target, &args, out, err, &SystemBrowser).await,
        Command::Refresh(args) => refresh::execute(&target, &args.name, out, err).await,
        Command::List(args) => list::execute(&target, args.all_namespaces, out, err).await,
        Command::Status(args) => status::execute(&target, &args.name, out).await,
    }?;
    out.flush()?;
    Ok(())
}
