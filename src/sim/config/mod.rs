//! What the simulator is told at start: the ECS cloud ([`SimConfig`]), keyless access
//! ([`KeylessConfig`]), the config file that holds both, and the binary's flag values.

mod cloud;
mod file;
mod flags;
mod keyless;

pub use cloud::{
    DEFAULT_RECONNECT_LIMIT_PER_MINUTE, DEFAULT_VNC_PROXY_HOST, InstanceStatus, SimAccount,
    SimConfig, SimInstance,
};
pub use file::{SimError, load_config_file};
pub use flags::RoleInstances;
pub(crate) use keyless::is_ram_arn;
pub use keyless::{
    DEFAULT_STS_LIFETIME_SECONDS, KeylessConfig, MAX_STS_LIFETIME_SECONDS, MetadataRole,
    OidcProvider, SimRole,
};
