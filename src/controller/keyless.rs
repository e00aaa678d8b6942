//! Keyless sessions (`spec.serviceAccountRef`): a short-lived token of the named ServiceAccount,
//! from the API server's TokenRequest, exchanged through STS `AssumeRoleWithOIDC` for the RAM role
//! in its `ecsvnc.dev/role-arn` annotation. The STS credentials are kept per ServiceAccount version
//! and renewed before they expire, so a refresh does not cost an exchange.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use super::Context;
use super::credentials::{Found, Renewer};
use super::issue::kube_reason;
use super::service_accounts::{ROLE_ARN_ANNOTATION, role_arn};
use crate::aliyun::{AssumeRoleWithOidc, StsCredentials};
use crate::session::validate;

/// The audience STS accepts on an OIDC token.
pub const STS_AUDIENCE: &str = "sts.aliyuncs.com";
/// The shortest token lifetime the API server grants: the token is used once, at once.
const TOKEN_SECONDS: i64 = 600;

/// Credentials for a session that names `name` in `spec.serviceAccountRef`, and the
/// ServiceAccount's resourceVersion, so a failure can wait for it to change.
pub async fn credentials(ctx: &Context, namespace: &str, name: &str) -> (Found, Option<String>) {
    if !validate::dns1123_subdomain(name) {
        return (
            Found::Missing(format!(
                "spec.serviceAccountRef.name {name:?} is not a ServiceAccount name in this namespace"
            )),
            None,
        );
    }
    if !ctx.settings.keyless_sessions {
        return (
            Found::Missing(
                "spec.serviceAccountRef needs keyless sessions, which are off: the operator's \
                 owner turns them on with --keyless-sessions (ECS_VNC_KEYLESS_SESSIONS) and \
                 --oidc-provider-arn; until then reference a Secret in credentialsRef"
                    .to_owned(),
            ),
            None,
        );
    }
    let Some(provider) = ctx.settings.oidc_provider_arn.as_deref() else {
        return (
            Found::Missing(
                "spec.serviceAccountRef needs the operator's --oidc-provider-arn \
                 (ALIBABA_CLOUD_OIDC_PROVIDER_ARN, chart value operator.oidcProviderArn), the \
                 cluster's RRSA OIDC provider; it is not set"
                    .to_owned(),
            ),
            None,
        );
    };
    let Some((version, annotation)) = ctx.service_accounts.get(namespace, name) else {
        return (
            Found::Missing(format!(
                "ServiceAccount {namespace}/{name} not found; create it and annotate it \
                 {ROLE_ARN_ANNOTATION}=acs:ram::<account id>:role/<role name>"
            )),
            None,
        );
    };
    let role = match annotation.as_deref().map(role_arn) {
        None => {
            return (
                Found::Missing(format!(
                    "ServiceAccount {namespace}/{name} has no {ROLE_ARN_ANNOTATION} annotation; \
                     set it to the RAM role its token may assume \
                     (acs:ram::<account id>:role/<role name>)"
                )),
                Some(version),
            );
        }
        Some(Err(why)) => {
            return (
                Found::Missing(format!(
                    "ServiceAccount {namespace}/{name}: annotation {ROLE_ARN_ANNOTATION} {why}"
                )),
                Some(version),
            );
        }
        Some(Ok(role)) => role.to_owned(),
    };

    // The operator's own RRSA role serves only the namespaces offered the operator's credentials,
    // whatever its trust policy says.
    let own_role = ctx
        .settings
        .credentials
        .as_deref()
        .and_then(|c| c.rrsa_role_arn());
    if own_role == Some(role.as_str()) && !ctx.settings.operator_credentials_scope.offers(namespace)
    {
        return (
            Found::Missing(format!(
                "ServiceAccount {namespace}/{name} names role {role}, the operator's own; it \
                 serves only the namespaces of --operator-credentials-namespaces"
            )),
            Some(version),
        );
    }
    let cell = ctx.service_accounts.cell(namespace, name, &version);
    let exchange = || exchange(ctx, namespace, name, &role, provider);
    let found = match cell.get(Timestamp::now(), exchange).await {
        Ok(credentials) => Found::Renewed(credentials, Renewer::ServiceAccount(cell)),
        Err(e) => Found::Failed {
            code: e.code,
            message: e.message,
            retryable: e.retryable,
        },
    };
    (found, Some(version))
}

/// Why an exchange failed, as it is recorded in status (cached by the cell until its backoff
/// ends, so it is plain data).
#[derive(Clone, Debug)]
pub struct ExchangeError {
    code: String,
    message: String,
    retryable: bool,
}

/// One exchange: a fresh token of the ServiceAccount, then STS.
async fn exchange(
    ctx: &Context,
    namespace: &str,
    name: &str,
    role: &str,
    provider: &str,
) -> Result<StsCredentials, ExchangeError> {
    let account = format!("ServiceAccount {namespace}/{name}");
    let token = token(&ctx.client, namespace, name)
        .await
        .map_err(|e| ExchangeError {
            code: "TokenRequestFailed".to_owned(),
            message: format!("could not get a token of {account}: {e}"),
            retryable: true,
        })?;
    let request = AssumeRoleWithOidc::new(role, provider, &token, &session_name(namespace, name))
        .map_err(|e| ExchangeError {
        code: "InvalidParameter".to_owned(),
        message: format!("cannot ask STS for role {role} with the token of {account}: {e}"),
        retryable: false,
    })?;
    ctx.sts
        .assume_role_with_oidc(&ctx.settings.sts_endpoint, &request)
        .await
        .map_err(|e| ExchangeError {
            code: e.code().to_owned(),
            message: format!(
                "exchanging the token of {account} for role {role} through STS failed: {}",
                e.message()
            ),
            retryable: e.is_retryable(),
        })
}

/// A token of the ServiceAccount for STS only: audience `sts.aliyuncs.com`, ten minutes.
async fn token(client: &kube::Client, namespace: &str, name: &str) -> Result<String, String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![STS_AUDIENCE.to_owned()],
            expiration_seconds: Some(TOKEN_SECONDS),
            bound_object_ref: None,
        },
        ..TokenRequest::default()
    };
    let answer = api
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| kube_reason(&e))?;
    answer
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the API server answered without a token".to_owned())
}

/// `RoleSessionName` as STS allows it (2 to 64 of `[A-Za-z0-9.@_-]`): names the namespace and
/// ServiceAccount, so the cloud's audit trail says whose grant opened a console.
/// Too long for STS, the name is cut and ends in a hash of the whole, so two long names do not
/// read the same in the audit trail.
fn session_name(namespace: &str, name: &str) -> String {
    let full: String = format!("ecsvnc.{namespace}.{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".@_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if full.len() <= 64 {
        return full;
    }
    // FNV-1a: stable across processes and releases, unlike the std hasher.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}.{hash:016x}", &full[..47])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_what_sts_allows() {
        assert_eq!(session_name("team-a", "opener"), "ecsvnc.team-a.opener");
        let long = session_name(&"n".repeat(63), &"s".repeat(253));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("ecsvnc.nnn"));
        let other = session_name(&"n".repeat(63), &format!("{}t", "s".repeat(252)));
        assert_eq!(other.len(), 64);
        assert_ne!(long, other, "cut names stay apart");
        for n in [long, other] {
            crate::aliyun::sts::check_role_session_name(&n).unwrap();
        }
    }
}
