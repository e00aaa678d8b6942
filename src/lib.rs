//! ecs-vnc-operator: break-glass console access to Alibaba Cloud ECS instances.

pub mod aliyun;
pub mod session;
