//! Keyless sessions (`spec.serviceAccountRef`): a short-lived token of the named ServiceAccount,
//! from the API server's TokenRequest, exchanged through STS `AssumeRoleWithOIDC` for the RAM role
//! in its `ecsvnc.dev/role-arn` annotation. The STS credentials are kept per ServiceAccount version
//! and renewed before they expire, so a refresh does not cost an exchange.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;

use super::found::{Failure, Found, Renewer};
use super::operator::Operator;
use super::service_accounts::{ROLE_ARN_ANNOTATION, ServiceAccountCache, role_arn};
use crate::aliyun::{AssumeRoleWithOidc, Endpoint, StsClient, StsCredentials};
use crate::controller::error::kube_reason;
use crate::session::validate;
use crate::telemetry::metrics::{Metrics, StsOutcome};

/// The audience STS accepts on an OIDC token.
pub const STS_AUDIENCE: &str = "sts.aliyuncs.com";
/// The shortest token lifetime the API server grants: the token is used once, at once.
const TOKEN_SECONDS: i64 = 600;

/// What keyless sessions need: the operator's switches, the API server for tokens, the
/// ServiceAccounts the watch knows, and STS.
#[derive(Clone, Copy)]
pub struct Keyless<'a> {
    /// `--keyless-sessions`.
    pub on: bool,
    /// `--oidc-provider-arn`, the cluster's RRSA OIDC provider.
    pub provider: Option<&'a str>,
    pub client: &'a kube::Client,
    pub service_accounts: &'a ServiceAccountCache,
    pub sts: &'a StsClient,
    /// `--sts-endpoint`, where token exchanges go.
    pub sts_endpoint: &'a Endpoint,
    /// Counts the exchanges by outcome.
    pub metrics: &'a Metrics,
}

/// Why a keyless session cannot be served: the message for the user, and the ServiceAccount's
/// resourceVersion when the watch knows it (a change of it is worth another look).
type Refusal = (String, Option<String>);

/// A ServiceAccount whose token may be exchanged: its version, the role it names, the provider.
struct Grant<'a> {
    version: String,
    role: String,
    provider: &'a str,
}

impl Keyless<'_> {
    /// Credentials for a session that names `name` in `spec.serviceAccountRef`, and the
    /// ServiceAccount's resourceVersion, so a failure can wait for it to change.
    pub async fn credentials(
        &self,
        operator: &Operator<'_>,
        namespace: &str,
        name: &str,
    ) -> (Found, Option<String>) {
        let grant = match self.grant(operator, namespace, name) {
            Ok(grant) => grant,
            Err((message, version)) => return (Found::Missing(message), version),
        };
        let cell = self.service_accounts.cell(namespace, name, &grant.version);
        let exchange = || self.exchange(namespace, name, &grant.role, grant.provider);
        let found = match cell.get(Timestamp::now(), exchange).await {
            Ok(credentials) => Found::Renewed(credentials, Renewer::ServiceAccount(cell)),
            Err(failure) => Found::Failed(failure),
        };
        (found, Some(grant.version))
    }

    /// Everything settled before a token is asked for: keyless sessions on, the ServiceAccount
    /// known to the watch, and the role its annotation names allowed.
    fn grant(
        &self,
        operator: &Operator<'_>,
        namespace: &str,
        name: &str,
    ) -> Result<Grant<'_>, Refusal> {
        if !validate::dns1123_subdomain(name) {
            return Err((
                format!(
                    "spec.serviceAccountRef.name {name:?} is not a ServiceAccount name in this namespace"
                ),
                None,
            ));
        }
        let provider = self.provider().map_err(|message| (message, None))?;
        let Some((version, annotation)) = self.service_accounts.get(namespace, name) else {
            return Err((
                format!(
                    "ServiceAccount {namespace}/{name} not found; create it and annotate it \
                     {ROLE_ARN_ANNOTATION}=acs:ram::<account id>:role/<role name>"
                ),
                None,
            ));
        };
        let account = format!("ServiceAccount {namespace}/{name}");
        let role = annotated_role(&account, annotation.as_deref()).and_then(|role| {
            if operator.withholds_role(&role, namespace) {
                return Err(format!(
                    "{account} names role {role}, the operator's own; it serves only the \
                     namespaces of --operator-credentials-namespaces"
                ));
            }
            Ok(role)
        });
        match role {
            Ok(role) => Ok(Grant {
                version,
                role,
                provider,
            }),
            Err(message) => Err((message, Some(version))),
        }
    }

    /// The OIDC provider, if keyless sessions are on; else what the operator's owner must set.
    fn provider(&self) -> Result<&str, String> {
        if !self.on {
            return Err(
                "spec.serviceAccountRef needs keyless sessions, which are off: the operator's \
                 owner turns them on with --keyless-sessions (ECS_VNC_KEYLESS_SESSIONS) and \
                 --oidc-provider-arn; until then reference a Secret in credentialsRef"
                    .to_owned(),
            );
        }
        self.provider.ok_or_else(|| {
            "spec.serviceAccountRef needs the operator's --oidc-provider-arn \
             (ALIBABA_CLOUD_OIDC_PROVIDER_ARN, chart value operator.oidcProviderArn), the \
             cluster's RRSA OIDC provider; it is not set"
                .to_owned()
        })
    }

    /// One exchange: a fresh token of the ServiceAccount, then STS.
    async fn exchange(
        &self,
        namespace: &str,
        name: &str,
        role: &str,
        provider: &str,
    ) -> Result<StsCredentials, Failure> {
        let account = format!("ServiceAccount {namespace}/{name}");
        let token = token(self.client, namespace, name)
            .await
            .map_err(|e| Failure {
                code: "TokenRequestFailed".to_owned(),
                message: format!("could not get a token of {account}: {e}"),
                retryable: true,
            })?;
        let request =
            AssumeRoleWithOidc::new(role, provider, &token, &session_name(namespace, name))
                .map_err(|e| Failure {
                    code: "InvalidParameter".to_owned(),
                    message: format!(
                        "cannot ask STS for role {role} with the token of {account}: {e}"
                    ),
                    retryable: false,
                })?;
        let exchanged = self
            .sts
            .assume_role_with_oidc(self.sts_endpoint, &request)
            .await;
        self.metrics.sts_exchanged(match &exchanged {
            Ok(_) => StsOutcome::Ok,
            Err(e) if e.is_retryable() => StsOutcome::Error,
            Err(_) => StsOutcome::Refused,
        });
        exchanged.map_err(|e| Failure {
            code: e.code().to_owned(),
            message: format!(
                "exchanging the token of {account} for role {role} through STS failed: {}",
                e.message()
            ),
            retryable: e.is_retryable(),
        })
    }
}

/// The role a ServiceAccount's annotation names, checked; else what is wrong with it.
fn annotated_role(account: &str, annotation: Option<&str>) -> Result<String, String> {
    match annotation.map(role_arn) {
        None => Err(format!(
            "{account} has no {ROLE_ARN_ANNOTATION} annotation; set it to the RAM role its \
             token may assume (acs:ram::<account id>:role/<role name>)"
        )),
        Some(Err(why)) => Err(format!("{account}: annotation {ROLE_ARN_ANNOTATION} {why}")),
        Some(Ok(role)) => Ok(role.to_owned()),
    }
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
