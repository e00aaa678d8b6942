//! Shared by the end-to-end tests: `cluster` (the local control plane) and `harness` (operator,
//! ecs-sim and a namespace per test).
pub mod cluster;
pub mod harness;
