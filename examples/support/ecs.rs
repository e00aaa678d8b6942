//! The ECS client the benchmark drivers call with: the operator's options, `max_attempts`
//! tries per call (the operator's own client makes one; the controller does the retrying).

use std::time::Duration;

use ecs_vnc_operator::aliyun::{ClientOptions, EcsClient, EcsError, RetryPolicy};

pub fn client(max_attempts: u32) -> Result<EcsClient, EcsError> {
    EcsClient::new(ClientOptions {
        retry: RetryPolicy {
            max_attempts,
            deadline: Duration::from_secs(10),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    })
}
