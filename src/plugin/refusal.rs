//! Why there is no URL: the refusal as the operator's status states it, and its wording for the
//! terminal. Its exit code is in `error`, with every other exit code.

use std::fmt;

use super::terminal::clean;

/// Why there is no URL, worded for the terminal.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub name: String,
    pub namespace: String,
    pub phase: String,
    /// The `Ready` condition's reason (`IssueFailed`, `Throttled`, …).
    pub reason: String,
    pub message: String,
    pub fix: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    Failed,
    Closed,
    Throttled,
    /// Served, but in a phase without a URL (it expired on the way, or is still pending).
    NotReady,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vncsession {:?} in namespace {:?} is {}\n  reason:  {}\n  message: {}\n  fix:     {}",
            clean(&self.name),
            clean(&self.namespace),
            self.phase,
            clean(&self.reason),
            clean(&self.message),
            clean(&self.fix)
        )
    }
}
