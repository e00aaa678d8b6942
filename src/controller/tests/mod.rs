//! Reconcile against kube-rs's `tower-test` mock API server and a real in-process `ecs-sim`:
//! each scenario states the exact Kubernetes calls, in order, with the bodies that matter. One
//! fixture; the scenarios by subject.

mod credentials;
mod endpoints;
mod expiry;
mod failure_metrics;
mod fixture;
mod isolation;
mod issue;
mod writes;
