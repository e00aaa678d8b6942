//! Shared by the end-to-end tests: `cluster` (the local control plane) and `harness` (operator,
//! ecs-sim and a namespace per test), `listeners` (endpoints a tenant controls: a tarpit, a fixed
//! error), `rrsa` (the operator's own RRSA identity against ecs-sim's STS).
pub mod cluster;
pub mod harness;
pub mod listeners;
pub mod rrsa;
