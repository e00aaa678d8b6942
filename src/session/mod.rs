//! The `VncSession` domain: the resource, its validation rules and the timing of a console URL.

pub mod expiry;
pub mod validate;
