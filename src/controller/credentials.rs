//! Where a session's credentials come from: a Secret in its own namespace, a ServiceAccount of
//! it (keyless), or the operator's own.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use std::sync::Arc;

use super::service_accounts::Cell;
use super::{Context, keyless};
use crate::aliyun::{Credentials, OperatorCredentials};
use crate::session::{VncSessionSpec, validate};

/// Credentials for one issue, or why there are none.
pub enum Found {
    /// From a Secret or a fixed AccessKey: what ECS says of them is for a person to act on.
    Credentials(Credentials),
    /// Temporary credentials the operator renews itself: if ECS rejects their token (a revoked
    /// role session, a clock that ran behind), they are dropped and exchanged again.
    Renewed(Credentials, Renewer),
    /// The Secret, the ServiceAccount or what they must hold is missing: the user must fix it.
    Missing(String),
    /// Getting them failed (an STS refusal, an unreachable STS): recorded like an ECS failure.
    Failed {
        code: String,
        message: String,
        retryable: bool,
    },
}

/// Reads the credentials a session uses. The Secret or ServiceAccount is looked up in
/// `namespace`, the session's own: a reference cannot name another namespace, and a name that is
/// not a plain object name is refused before any API call.
pub async fn load(
    ctx: &Context,
    namespace: &str,
    spec: &VncSessionSpec,
) -> Result<(Found, Option<String>), kube::Error> {
    if let Some(reference) = &spec.service_account_ref {
        return Ok(keyless::credentials(ctx, namespace, &reference.name).await);
    }
    let Some(reference) = &spec.credentials_ref else {
        return Ok((operator_credentials(ctx, namespace).await, None));
    };
    let (client, cache) = (&ctx.client, &ctx.secrets);
    if !validate::dns1123_subdomain(&reference.name) {
        return Ok((
            Found::Missing(format!(
                "spec.credentialsRef.name {:?} is not a Secret name in this namespace",
                reference.name
            )),
            None,
        ));
    }
    // Unchanged since it was last read (the metadata watch says so): no read at all.
    if let Some((version, credentials)) = cache.credentials(namespace, &reference.name) {
        return Ok((Found::Credentials(credentials), Some(version)));
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let Some(secret) = secrets.get_opt(&reference.name).await? else {
        return Ok((
            Found::Missing(format!(
                "Secret {namespace}/{} not found; create it with keys accessKeyId and accessKeySecret",
                reference.name
            )),
            None,
        ));
    };
    let version = secret.metadata.resource_version.clone();
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let found = match Credentials::from_secret_data(&data) {
        Ok(c) => {
            if let Some(version) = &version {
                cache.remember(namespace, &reference.name, version, &c);
            }
            Found::Credentials(c)
        }
        Err(e) => Found::Missing(format!("Secret {namespace}/{}: {e}", reference.name)),
    };
    Ok((found, version))
}

async fn operator_credentials(ctx: &Context, namespace: &str) -> Found {
    if !ctx.settings.operator_credentials_scope.offers(namespace) {
        return Found::Missing(format!(
            "spec.credentialsRef is not set and the operator does not offer its own credentials to \
             namespace {namespace} (--operator-credentials-namespaces, \
             ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES); reference a Secret in this namespace"
        ));
    }
    let Some(source) = &ctx.settings.credentials else {
        return Found::Missing(
            "spec.credentialsRef is not set and the operator has no credentials of its own \
             (ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, RRSA, or \
             ALIBABA_CLOUD_ECS_METADATA)"
                .to_owned(),
        );
    };
    match source.credentials().await {
        Ok(c) if source.renew_at().is_some() => {
            Found::Renewed(c, Renewer::Operator(source.clone()))
        }
        Ok(c) => Found::Credentials(c),
        Err(e) => Found::Failed {
            code: e.code().to_owned(),
            message: format!(
                "the operator's own credentials ({}): {}",
                source.describe(),
                e.message()
            ),
            retryable: e.is_retryable(),
        },
    }
}

/// Where renewed credentials came from, to drop them when ECS rejects them.
#[derive(Clone)]
pub enum Renewer {
    ServiceAccount(Arc<Cell>),
    Operator(Arc<OperatorCredentials>),
}

/// At most one drop of the same credentials per this long, however many rejections arrive.
pub const INVALIDATION_GAP: std::time::Duration = std::time::Duration::from_secs(30);

impl Renewer {
    /// Drops the credentials so the next attempt fetches new ones, at most once per
    /// [`INVALIDATION_GAP`]; returns whether they were dropped.
    pub fn invalidate(&self) -> bool {
        match self {
            Renewer::ServiceAccount(cell) => cell.invalidate_at_most_every(INVALIDATION_GAP),
            Renewer::Operator(source) => source.invalidate_at_most_every(INVALIDATION_GAP),
        }
    }
}

/// The resourceVersion of the Secret or ServiceAccount a session references, as the metadata
/// watch last saw it; no API call. A name that is not a plain object name is never looked up.
pub fn version(ctx: &Context, namespace: &str, spec: &VncSessionSpec) -> Option<String> {
    if let Some(reference) = &spec.service_account_ref {
        return validate::dns1123_subdomain(&reference.name)
            .then(|| ctx.service_accounts.version(namespace, &reference.name))
            .flatten();
    }
    let reference = spec.credentials_ref.as_ref()?;
    if !validate::dns1123_subdomain(&reference.name) {
        return None;
    }
    ctx.secrets.version(namespace, &reference.name)
}
