//! The Alibaba Cloud ECS client: signing, credentials, endpoints, errors, retries, console URLs.
//! Nothing in here knows about Kubernetes.

pub mod signature;
