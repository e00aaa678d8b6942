//! `kubectl vnc`: from a `VncSession` grant to a live console in one command.
//!
//! The binary (`src/bin/kubectl-vnc.rs`) only parses the command line and calls [`run`]. Each
//! file here does one job: the pure parts (outcome of a served request, the refusal and the
//! advice for it, durations, tables, error wording, the console-base check, terminal cleaning)
//! know nothing of Kubernetes; the Kubernetes calls live in `refresh`, `wait`, `list`, `status`
//! and `events`.
//!
//! Exit codes (also in `kubectl vnc --help`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (for `open`: the URL was printed, even if no browser could be started) |
//! | 1 | unexpected error (API server unreachable, server error, unreadable object) |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | no such VncSession (or it was deleted while waiting) |
//! | 4 | the VncSession CRD is not installed |
//! | 5 | not allowed: 403 (the verb and resource are named) or 401 |
//! | 6 | no usable kubeconfig or context |
//! | 7 | `open`: the operator did not serve the request within `--timeout` |
//! | 10 | `open`: the session is `Failed` |
//! | 11 | `open`: the session is `Closed` (its ttl has passed) |
//! | 12 | `open`: throttled (too many URLs per minute for the instance) |
//! | 13 | `open`: served, but not `Ready` (e.g. the URL expired before it arrived) |
//! | 14 | `open`: the console URL is not an `https://` URL under the console base (`--console-base-url`); neither opened nor printed |
//!
//! Everything printed that came from the cluster (names, status, conditions, Events, errors the
//! API server words) goes through [`terminal::clean`] first: those bytes are the tenant's.

pub mod advice;
pub mod args;
pub mod browser;
pub mod connect;
pub mod console_base;
pub mod duration;
pub mod error;
pub mod events;
pub mod format;
pub mod list;
pub mod open;
pub mod outcome;
pub mod refresh;
pub mod refusal;
pub mod run;
pub mod status;
pub mod table;
pub mod terminal;
pub mod wait;

#[cfg(test)]
pub(crate) mod mock;

pub use args::Cli;
pub use error::Error;
pub use run::run;

/// The resource as RBAC and error messages name it.
pub const RESOURCE: &str = "vncsessions.ecsvnc.dev";
