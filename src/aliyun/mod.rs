//! The Alibaba Cloud clients: ECS (signing, endpoints, errors, retries, console URLs), STS and the
//! instance metadata service for temporary credentials, and the operator's credential chain.
//! Nothing in here knows about Kubernetes.

mod client;
mod console_url;
mod credentials;
mod endpoint;
mod endpoint_policy;
mod error;
mod flag_list;
mod http;
pub mod provider;
mod regions;
mod renewing;
mod response;
mod retry;
pub mod signature;
pub mod sts;

pub use client::{ClientOptions, EcsClient, Observer};
pub use console_url::{DEFAULT_CONSOLE_BASE, console_url};
pub use credentials::{
    Credentials, CredentialsError, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN,
};
pub use endpoint::{DEFAULT_STS_ENDPOINT, Endpoint, EndpointError, REGION_OVERRIDES};
pub use endpoint_policy::{AllowedEndpoints, DEFAULT_ALLOWED_ENDPOINTS_DESCRIPTION};
pub use error::EcsError;
pub use http::MAX_RESPONSE_BYTES;
pub use provider::{OperatorCredentials, ProviderOptions, ProviderSetupError};
pub use regions::{Regions, SDK_REGIONS};
pub use renewing::{
    CLOCK_STEP_TOLERANCE, MAX_RENEWAL_MARGIN, RenewBackoff, Renewing, renewal_due, renewal_margin,
    renewal_time,
};
pub use response::{
    IssuedVncUrl, MAX_REASON_CHARS, MAX_REQUEST_ID_CHARS, decode_error, decode_os_type,
    decode_vnc_url, os_type_is_windows,
};
pub use retry::RetryPolicy;
pub use sts::{
    AssumeRoleWithOidc, CredentialService, StsClient, StsCredentials, StsError, StsOptions,
};
