//! The one support library of every test binary (after Kubernetes' test/e2e/framework): each
//! binary says `mod support;` and uses the parts it needs, instead of a copy of its own.
//!
//! - On disk: `paths` (the project, the cache), `venv` (the Python SDK's venv), `scratch`
//!   (directories removed after the test), `markdown` (code spans and tables of the docs),
//!   `source_tree` (the Rust sources, for tests of the code's shape).
//! - ecs-sim: `ecs_sim` (the demo cloud, a sim in process), `sim_process` (the binary),
//!   `sim_requests` (hand-signed RPC calls and their answers).
//! - Plumbing: `http` (the HTTP client), `ports` (a port nobody listens on), `processes`
//!   (a child's environment, signals, running a tool), `procfs` (CPU, memory, descriptors),
//!   `waiting` (bounded polling), `scripted_server` (an HTTP server answering as a test says),
//!   `listeners` (endpoints a tenant controls: a tarpit, a fixed error).
//! - End to end: `cluster` (a local control plane), `shared_cluster` (the one of a test binary,
//!   set up as `deploy/` says), `env` (a namespace, a Secret and an ecs-sim per test),
//!   `manifests` (its sessions), `session_wait` and `session_status` (waiting for them, reading
//!   their status), `operator` (operator processes), `bulk` (many objects at once), `rrsa`
//!   (ServiceAccount tokens, the operator's RRSA identity against ecs-sim's STS).
// Every binary compiles the whole library and uses a part of it.
#![allow(dead_code)]

pub mod bulk;
pub mod cluster;
pub mod ecs_sim;
pub mod env;
pub mod http;
pub mod listeners;
pub mod manifests;
pub mod markdown;
pub mod operator;
pub mod paths;
pub mod ports;
pub mod processes;
pub mod procfs;
pub mod rrsa;
pub mod scratch;
pub mod scripted_server;
pub mod session_status;
pub mod session_wait;
pub mod shared_cluster;
pub mod sim_process;
pub mod sim_requests;
pub mod source_tree;
pub mod venv;
pub mod waiting;
