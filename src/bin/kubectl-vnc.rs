//! `kubectl-vnc`: the kubectl plugin (`kubectl vnc open|refresh|list|status`); the work is in
//! `ecs_vnc_operator::plugin`.

use std::process::ExitCode;

use clap::Parser;
use ecs_vnc_operator::plugin::{self, Cli};

// One thread: the plugin makes a few calls and waits; a lean start counts toward time to console.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    plugin::run(Cli::parse()).await
}
