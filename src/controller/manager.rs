//! The name the operator writes under: the field manager of its server-side applied status and
//! the reporting controller of its Events.

/// Field manager for server-side apply of the status, and the Events' reporting controller.
pub const MANAGER: &str = "ecs-vnc-operator";
