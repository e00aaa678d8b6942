//! What can go wrong in the shell itself (ECS failures are outcomes recorded in status, not
//! errors), and how a Kubernetes API error reads in one line of status, log or Event.

/// The shell's own failures: the Kubernetes API, missing metadata, a missing CRD or grant.
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

/// A Kubernetes error as one short line, e.g. `secrets "x" is forbidden: …` (code and reason).
pub fn kube_reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
