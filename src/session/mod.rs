//! The `VncSession` domain: the resource, its validation rules and the timing of a console URL,
//! and the decision core (`decide`, with what it sees in `observed`, what it writes in `update`,
//! how an issue's outcome is recorded in `outcome` and when a failure is retried in `retry`).
//!
//! Architecture invariant: nothing here does I/O or reads the clock; the controller and the CLI
//! pass `now` in and carry the decisions out.

pub mod conditions;
pub mod crd;
pub mod decide;
pub mod expiry;
pub mod message;
mod observed;
mod outcome;
pub mod refresh;
mod retry;
mod update;
pub mod validate;

pub use crd::{VncSession, VncSessionSpec, VncSessionStatus};
