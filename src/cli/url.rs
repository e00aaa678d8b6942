//! `ecs-vnc-operator url`: one console URL, straight from ECS, for when Kubernetes itself is down.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::aliyun::provider::{
    ENV_ECS_METADATA, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE, ENV_ROLE_ARN, ENV_STS_ENDPOINT,
};
use crate::aliyun::{
    ClientOptions, DEFAULT_CONSOLE_BASE, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET,
    ENV_SECURITY_TOKEN, EcsClient, EcsError, Endpoint, OperatorCredentials, ProviderOptions,
    Regions, StsError, console_url, os_type_is_windows,
};
use crate::session::expiry::{Expiry, Limits, rfc3339};
use crate::session::validate;

/// ECS answered with an error (or the call failed after retries).
const EXIT_ECS_ERROR: u8 = 1;
/// Bad input, no credentials, or an endpoint that cannot be reached.
const EXIT_USAGE: u8 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct UrlArgs {
    /// Region of the instance, e.g. cn-hangzhou.
    #[arg(long)]
    pub region_id: String,
    /// Instance ID, e.g. i-bp1hzoinajzkh91h1234.
    #[arg(long)]
    pub instance_id: String,
    /// Whether the instance runs Windows; `auto` asks DescribeInstances for its OSType.
    #[arg(long, value_enum, default_value_t = Windows::Auto)]
    pub windows: Windows,
    /// ECS endpoint (http:// or https://); default: the official SDK's endpoint for the region.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Regions newer than the official SDK's table, comma-separated; other regions are refused.
    #[arg(long, env = "ECS_VNC_EXTRA_REGIONS", value_name = "REGIONS", default_value = "",
          hide_default_value = true, value_parser = Regions::parse)]
    pub extra_regions: Regions,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// STS endpoint for RRSA credentials; default: the official global endpoint.
    #[arg(long, value_name = "URL", env = ENV_STS_ENDPOINT)]
    pub sts_endpoint: Option<String>,
    /// Console page the VncUrl is handed to.
    #[arg(long, value_name = "URL", default_value = DEFAULT_CONSOLE_BASE)]
    pub console_base_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Windows {
    Auto,
    True,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The console URL alone, on one line.
    Text,
    /// URL, VncUrl and timing as a JSON object.
    Json,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOutput<'a> {
    console_url: &'a str,
    vnc_url: &'a str,
    instance_id: &'a str,
    is_windows: bool,
    issued_at: String,
    url_expires_at: String,
    session_expires_at: String,
    request_id: &'a str,
}

/// A failure with the exit code it maps to; the message never holds credentials or URLs with a
/// query string.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
}

impl From<EcsError> for Failure {
    fn from(err: EcsError) -> Self {
        let code = match err {
            EcsError::ConnectionFailed { .. } | EcsError::ClientSetup { .. } => EXIT_USAGE,
            _ => EXIT_ECS_ERROR,
        };
        let mut message = err.to_string();
        if let Some(request_id) = err.request_id() {
            message.push_str(&format!(" (RequestId: {request_id})"));
        }
        Self { code, message }
    }
}

impl From<StsError> for Failure {
    fn from(err: StsError) -> Self {
        let code = match &err {
            StsError::Call {
                error: EcsError::ConnectionFailed { .. } | EcsError::ClientSetup { .. },
                ..
            } => EXIT_USAGE,
            _ => EXIT_ECS_ERROR,
        };
        let mut message = format!("could not get credentials: {err}");
        if let Some(request_id) = err.request_id() {
            message.push_str(&format!(" (RequestId: {request_id})"));
        }
        Self { code, message }
    }
}

pub async fn run(args: UrlArgs) -> ExitCode {
    match issue(&args).await {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if writeln!(stdout, "{output}")
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(EXIT_USAGE);
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn issue(args: &UrlArgs) -> Result<String, Failure> {
    validate::region_id(&args.region_id).map_err(Failure::usage)?;
    validate::instance_id(&args.instance_id).map_err(Failure::usage)?;
    let endpoint = Endpoint::resolve(
        &args.region_id,
        args.endpoint.as_deref(),
        &args.extra_regions,
    )
    .map_err(|e| Failure::usage(e.to_string()))?;
    check_console_base(&args.console_base_url)?;
    let sts_endpoint = Endpoint::resolve_sts(args.sts_endpoint.as_deref())
        .map_err(|e| Failure::usage(format!("--sts-endpoint: {e}")))?;
    let source = OperatorCredentials::from_env(ProviderOptions::new(sts_endpoint))
        .map_err(|e| Failure::usage(e.to_string()))?
        .ok_or_else(|| {
            Failure::usage(format!(
                "no credentials: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} \
                 (and {ENV_SECURITY_TOKEN} for STS); or, for RRSA, {ENV_OIDC_TOKEN_FILE}, \
                 {ENV_ROLE_ARN} and {ENV_OIDC_PROVIDER_ARN}; or {ENV_ECS_METADATA} with the \
                 instance's RAM role"
            ))
        })?;
    tracing::debug!(credentials = %source.describe(), "credentials found");
    let creds = source.credentials().await?;
    let client = EcsClient::new(ClientOptions::default())?;

    let is_windows = match args.windows {
        Windows::True => true,
        Windows::False => false,
        Windows::Auto => {
            let os_type = client
                .describe_os_type(&endpoint, &creds, &args.region_id, &args.instance_id)
                .await?;
            os_type_is_windows(&os_type)
        }
    };
    let issued = client
        .describe_instance_vnc_url(&endpoint, &creds, &args.region_id, &args.instance_id)
        .await?;
    let console = console_url(
        &args.console_base_url,
        &issued.vnc_url,
        &args.instance_id,
        is_windows,
    );
    match args.output {
        Output::Text => Ok(console),
        Output::Json => {
            let expiry = Expiry::from_issue(issued.sent_at, Limits::default());
            let out = JsonOutput {
                console_url: &console,
                vnc_url: &issued.vnc_url,
                instance_id: &args.instance_id,
                is_windows,
                issued_at: rfc3339(expiry.issued_at),
                url_expires_at: rfc3339(expiry.url_expires_at),
                session_expires_at: rfc3339(expiry.session_expires_at),
                request_id: &issued.request_id,
            };
            serde_json::to_string_pretty(&out)
                .map_err(|e| Failure::usage(format!("could not encode the output: {e}")))
        }
    }
}

/// The console base is pasted into a browser: it must be an http(s) URL without a fragment.
fn check_console_base(base: &str) -> Result<(), Failure> {
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| Failure::usage(format!("console base URL {base:?} is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
        return Err(Failure::usage(format!(
            "console base URL {base:?} must be an http:// or https:// URL without a fragment"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_errors_exit_1_with_the_request_id_and_an_unreachable_endpoint_exits_2() {
        let cases = [
            (
                EcsError::Api {
                    code: "InvalidInstanceId.NotFound".into(),
                    message: "The specified InstanceId does not exist.".into(),
                    request_id: Some("R-1".into()),
                    http_status: Some(404),
                },
                1,
                "ECS answered InvalidInstanceId.NotFound: The specified InstanceId does not exist. (RequestId: R-1)",
            ),
            (
                EcsError::ConnectionFailed {
                    endpoint: "http://127.0.0.1:1".into(),
                    reason: "connection refused".into(),
                    request_sent: false,
                },
                2,
                "could not reach http://127.0.0.1:1: connection refused",
            ),
        ];
        for (error, code, message) in cases {
            let f = Failure::from(error);
            assert_eq!(f.code, code);
            assert_eq!(f.message, message);
        }
    }

    #[test]
    fn sts_failures_say_they_are_about_credentials() {
        let f = Failure::from(StsError::Call {
            service: crate::aliyun::CredentialService::Sts,
            error: EcsError::Api {
                code: "EntityNotExist.Role".into(),
                message: "The role not exists.".into(),
                request_id: Some("R-2".into()),
                http_status: Some(404),
            },
        });
        assert_eq!(f.code, 1);
        assert_eq!(
            f.message,
            "could not get credentials: STS answered EntityNotExist.Role: The role not exists. (RequestId: R-2)"
        );
        let f = Failure::from(StsError::Call {
            service: crate::aliyun::CredentialService::InstanceMetadata,
            error: EcsError::ConnectionFailed {
                endpoint: "http://100.100.100.200".into(),
                reason: "connect timed out".into(),
                request_sent: false,
            },
        });
        assert_eq!(f.code, 2);
    }

    #[tokio::test]
    async fn a_region_outside_the_sdks_table_is_bad_input_before_anything_is_sent() {
        let args = UrlArgs {
            region_id: "oss-accelerate".into(),
            instance_id: "i-bp1".into(),
            windows: Windows::False,
            endpoint: Some("http://127.0.0.1:1".into()),
            extra_regions: Regions::parse("cn-nanjing").unwrap(),
            output: Output::Text,
            sts_endpoint: None,
            console_base_url: DEFAULT_CONSOLE_BASE.into(),
        };
        let f = issue(&args).await.expect_err("refused");
        assert_eq!(f.code, EXIT_USAGE);
        assert!(
            f.message.contains("\"oss-accelerate\"") && f.message.contains("--extra-regions"),
            "{}",
            f.message
        );
    }

    #[test]
    fn console_base_must_be_http() {
        assert!(check_console_base(DEFAULT_CONSOLE_BASE).is_ok());
        assert!(check_console_base("https://c.example/x?lang=en").is_ok());
        assert!(check_console_base("javascript:alert(1)").is_err());
        assert!(check_console_base("https://c.example/#frag").is_err());
        assert!(check_console_base("nope").is_err());
    }
}
