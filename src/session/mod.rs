//! The `VncSession` domain: the resource, its validation rules and the timing of a console URL.

pub mod conditions;
pub mod crd;
pub mod decide;
pub mod expiry;
pub mod message;
pub mod refresh;
pub mod validate;

pub use crd::{VncSession, VncSessionSpec, VncSessionStatus};
