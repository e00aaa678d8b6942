//! The Kubernetes shell around the decision function: watch sessions (and the Secrets they use),
//! carry decisions out, write status and Events.
//!
//! Declarations and re-exports only, so that no file here depends on this one. Dependencies
//! point one way: `run` → `reconcile` → `issue` → `credentials`, a room of its own that never
//! uses `issue`, `reconcile` or `context` (the context lends it what it needs); `reconcile`,
//! `issue` and `write` read the shared state through `context`, which holds the limiter, the
//! pacer, the namespace slots and the credentials caches; `error`, `manager` and `trim` use
//! nothing of the controller.

mod context;
mod credentials;
mod error;
pub mod fairness;
mod issue;
pub mod leader;
pub mod limiter;
mod manager;
pub mod pacer;
mod reconcile;
mod run;
mod stopping;
mod superseded;
mod trim;
mod unwritten;
mod write;

pub use context::{Context, Settings};
pub use credentials::OperatorCredentialsScope;
pub use error::Error;
pub use manager::MANAGER;
pub use reconcile::{error_policy, reconcile};
pub use run::run;

#[cfg(test)]
mod tests;
