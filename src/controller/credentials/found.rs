//! What a credentials lookup ends in: credentials (fixed, or renewed by the operator itself),
//! why the user must act, or a failure recorded like an ECS failure.

use std::sync::Arc;

use crate::aliyun::{Credentials, OperatorCredentials, Renewing};

/// Credentials for one issue, or why there are none.
pub enum Found {
    /// From a Secret or a fixed AccessKey: what ECS says of them is for a person to act on.
    Credentials(Credentials),
    /// Temporary credentials the operator renews itself: if ECS rejects their token (a revoked
    /// role session, a clock that ran behind), they are dropped and exchanged again.
    Renewed(Credentials, Renewer),
    /// The Secret, the ServiceAccount or what they must hold is missing: the user must fix it.
    Missing(String),
    /// Getting them failed (an STS refusal, an unreachable STS): recorded like an ECS failure.
    Failed(Failure),
}

/// Why getting credentials failed, as it is recorded in status. Plain data: a ServiceAccount's
/// cell keeps it until its backoff ends.
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// Where renewed credentials came from, to drop them when ECS rejects them.
#[derive(Clone)]
pub enum Renewer {
    /// The STS cell of one ServiceAccount version (keyless sessions).
    ServiceAccount(Arc<Renewing<Failure>>),
    Operator(Arc<OperatorCredentials>),
}

/// At most one drop of the same credentials per this long, however many rejections arrive.
pub const INVALIDATION_GAP: std::time::Duration = std::time::Duration::from_secs(30);

impl Renewer {
    /// Drops the credentials so the next attempt fetches new ones, at most once per
    /// [`INVALIDATION_GAP`]; returns whether they were dropped.
    pub fn invalidate(&self) -> bool {
        match self {
            Renewer::ServiceAccount(cell) => cell.invalidate_at_most_every(INVALIDATION_GAP),
            Renewer::Operator(source) => source.invalidate_at_most_every(INVALIDATION_GAP),
        }
    }
}
