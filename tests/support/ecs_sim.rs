//! ecs-sim in the test process: the names of its demo cloud (`SimConfig::demo`), and a sim on a
//! free loopback port.

use std::net::SocketAddr;

use ecs_vnc_operator::aliyun::Endpoint;
use ecs_vnc_operator::sim::{self, KeylessConfig, SimConfig, SimHandle};

/// The demo cloud's region and its instances: running Linux and Windows, one stopped, one
/// starting.
pub const REGION: &str = "cn-hangzhou";
pub const LINUX: &str = "i-bp1hzoinajzkh91h1234";
pub const WINDOWS: &str = "i-bp1windows0000000001";
pub const STOPPED: &str = "i-bp1stopped000000001";
pub const STARTING: &str = "i-bp1starting00000001";

/// `127.0.0.1:0`: a port the kernel picks.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The demo cloud's first AccessKey, and the action every console URL costs.
pub const SIM_KEY_ID: &str = "sim-access-key-id";
pub const SIM_KEY_SECRET: &str = "sim-access-key-secret";
pub const VNC: &str = "DescribeInstanceVncUrl";

/// A sim with `config` on a free loopback port.
pub async fn start(config: SimConfig) -> SimHandle {
    sim::start(config, loopback()).await.expect("sim starts")
}

/// A sim of the demo cloud.
pub async fn demo() -> SimHandle {
    start(SimConfig::demo()).await
}

/// A sim of the demo cloud with an STS and metadata side.
pub async fn with_keyless(keyless: KeylessConfig) -> SimHandle {
    with_keyless_config(SimConfig::demo(), keyless).await
}

/// A sim of `config` with an STS and metadata side.
pub async fn with_keyless_config(config: SimConfig, keyless: KeylessConfig) -> SimHandle {
    sim::start_with_keyless(config, keyless, loopback())
        .await
        .unwrap()
}

/// The sim's address as the ECS client takes it.
pub fn endpoint(sim: &SimHandle) -> Endpoint {
    Endpoint::parse(&sim.endpoint()).unwrap()
}
