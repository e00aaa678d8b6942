//! The Alibaba Cloud ECS client: signing, credentials, endpoints, errors, retries, console URLs.
//! Nothing in here knows about Kubernetes.

mod client;
mod console_url;
mod credentials;
mod endpoint;
mod endpoint_policy;
mod error;
mod response;
mod retry;
pub mod signature;

pub use client::{ClientOptions, EcsClient, MAX_RESPONSE_BYTES, Observer};
pub use console_url::{DEFAULT_CONSOLE_BASE, console_url};
pub use credentials::{
    Credentials, CredentialsError, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN,
};
pub use endpoint::{Endpoint, EndpointError};
pub use endpoint_policy::{AllowedEndpoints, DEFAULT_ALLOWED_ENDPOINTS};
pub use error::EcsError;
pub use response::{
    IssuedVncUrl, MAX_REASON_CHARS, MAX_REQUEST_ID_CHARS, decode_error, decode_os_type,
    decode_vnc_url, os_type_is_windows,
};
pub use retry::RetryPolicy;
