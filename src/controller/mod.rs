//! The Kubernetes shell around the decision function: watch sessions (and the Secrets they use),
//! carry decisions out, write status and Events.

mod context;
mod credential_scope;
mod credentials;
pub mod fairness;
mod issue;
mod keyless;
pub mod leader;
pub mod limiter;
pub mod pacer;
mod reconcile;
mod run;
mod secrets;
mod service_accounts;
mod stopping;
mod superseded;
mod unwritten;
mod watched;
mod write;

pub use context::{Context, Settings};
pub use credential_scope::OperatorCredentialsScope;
pub use reconcile::{error_policy, reconcile};
pub use run::run;

/// Field manager for server-side apply of the status, and the Events' reporting controller.
pub const MANAGER: &str = "ecs-vnc-operator";

/// What can go wrong in the shell itself; ECS failures are outcomes recorded in status, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no {0}")]
    MissingMetadata(&'static str),
    #[error("the VncSession CRD is not installed: kubectl apply -f crds/vncsession.yaml")]
    CrdNotInstalled,
    #[error("the status write kept conflicting with other writers ({0} attempts)")]
    StatusConflict(u32),
    #[error(
        "keyless sessions are on (--oidc-provider-arn, ALIBABA_CLOUD_OIDC_PROVIDER_ARN) but the \
         operator may not list ServiceAccounts: grant deploy/components/keyless (the chart does \
         with operator.oidcProviderArn)"
    )]
    ServiceAccountsForbidden,
}

impl Error {
    /// A short, fixed label for metrics (never free text).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::MissingMetadata(_) => "metadata",
            Error::CrdNotInstalled => "crd",
            Error::StatusConflict(_) => "conflict",
            Error::ServiceAccountsForbidden => "rbac",
        }
    }
}

#[cfg(test)]
mod tests;
