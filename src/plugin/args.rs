//! The command line of `kubectl vnc`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::console_base::{ConsoleBase, DEFAULT_CONSOLE_BASE};

const EXIT_CODES: &str = "\
Exit codes:
  0   done (open: the URL was printed)
  1   unexpected error (API server unreachable, server error)
  2   usage error
  3   no such VncSession
  4   the VncSession CRD is not installed
  5   not allowed (RBAC 403, or 401)
  6   no usable kubeconfig or context
  7   open: the operator did not answer within --timeout
  10  open: the session failed
  11  open: the session is closed (ttl passed)
  12  open: throttled (too many URLs per minute for the instance)
  13  open: served, but not Ready
  14  open: the console URL is not an https URL under the console base (not opened, not printed)";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl-vnc",
    bin_name = "kubectl vnc",
    version,
    about = "Open the VNC console of an Alibaba Cloud ECS instance from a VncSession grant",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where to find the cluster, as kubectl takes it.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// Namespace of the session; default: the context's namespace, else `default`.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig context to use; default: the current context.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Kubeconfig file; default: $KUBECONFIG, else ~/.kube/config.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for a fresh console URL, wait for it, print it and open the browser.
    Open(OpenArgs),
    /// Ask for a fresh console URL without waiting; prints the refresh value set.
    Refresh(NameArg),
    /// List the sessions with their phase, URL expiry and reason.
    List(ListArgs),
    /// Show one session: phase, time left, last error and recent Events.
    Status(NameArg),
}

#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    /// Name of the VncSession.
    pub name: String,
    /// Only print the URL; do not start a browser.
    #[arg(long)]
    pub print: bool,
    /// How long to wait for the operator (`500ms`, `10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = super::duration::parse)]
    pub timeout: Duration,
    /// The console page your operator builds URLs on (its `run --console-base-url`); only an
    /// https:// URL on that page is opened or printed.
    #[arg(
        long,
        env = "ECS_VNC_CONSOLE_BASE_URL",
        value_name = "URL",
        default_value = DEFAULT_CONSOLE_BASE,
        value_parser = ConsoleBase::parse
    )]
    pub console_base_url: ConsoleBase,
}

#[derive(Debug, Clone, Args)]
pub struct NameArg {
    /// Name of the VncSession.
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// List the sessions of all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-vnc").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn open_takes_namespace_after_the_name_and_a_default_timeout() {
        let cli = parse(&["open", "db-1", "-n", "team-a", "--print"]).unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("team-a"));
        match cli.command {
            Command::Open(open) => {
                assert_eq!(open.name, "db-1");
                assert!(open.print);
                assert_eq!(open.timeout, Duration::from_secs(10));
                assert_eq!(open.console_base_url, ConsoleBase::default());
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn timeout_takes_milliseconds_seconds_and_minutes() {
        for (text, want) in [("500ms", 500), ("10s", 10_000), ("1m", 60_000)] {
            let cli = parse(&["open", "x", "--timeout", text]).unwrap();
            let Command::Open(open) = cli.command else {
                panic!("not open")
            };
            assert_eq!(open.timeout, Duration::from_millis(want), "{text}");
        }
        assert!(parse(&["open", "x", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn the_console_base_is_a_flag_that_must_be_https() {
        let cli = parse(&["open", "x", "--console-base-url", "https://c.example/vnc"]).unwrap();
        let Command::Open(open) = cli.command else {
            panic!("not open")
        };
        assert_eq!(open.console_base_url.as_str(), "https://c.example/vnc");
        assert!(parse(&["open", "x", "--console-base-url", "file:///etc/passwd"]).is_err());
        assert!(parse(&["open", "x", "--console-base-url", "http://c.example/"]).is_err());
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = parse(&["--context", "prod", "--kubeconfig", "/tmp/kc", "list", "-A"]).unwrap();
        assert_eq!(cli.global.context.as_deref(), Some("prod"));
        assert_eq!(
            cli.global.kubeconfig.as_deref(),
            Some(std::path::Path::new("/tmp/kc"))
        );
        assert!(matches!(
            cli.command,
            Command::List(ListArgs {
                all_namespaces: true
            })
        ));
    }

    #[test]
    fn a_name_is_required() {
        assert!(parse(&["open"]).is_err());
        assert!(parse(&["status"]).is_err());
    }
}
