//! ecs-vnc-operator: break-glass console access to Alibaba Cloud ECS instances.

pub mod aliyun;
pub mod cli;
pub mod controller;
pub mod plugin;
pub mod session;
pub mod sim;
pub mod telemetry;
