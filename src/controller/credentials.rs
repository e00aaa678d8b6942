//! Where a session's AccessKey comes from: a Secret in its own namespace, or the operator's env.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::credential_scope::OperatorCredentialsScope;
use super::secrets::SecretCache;
use crate::aliyun::Credentials;
use crate::session::{VncSessionSpec, validate};

/// Credentials for one issue, or why there are none.
pub enum Found {
    Credentials(Credentials),
    /// The Secret or its keys are missing: the user must fix it.
    Missing(String),
}

/// The operator's own credentials, offered to some namespaces only.
#[derive(Clone, Copy)]
pub struct OperatorCredentials<'a> {
    pub credentials: Option<&'a Credentials>,
    pub scope: &'a OperatorCredentialsScope,
}

/// Reads the credentials a session uses. The Secret is looked up in `namespace`, the session's own:
/// a `credentialsRef` cannot name another namespace, and a name that is not a plain object name
/// is refused before any API call.
pub async fn load(
    client: &kube::Client,
    cache: &SecretCache,
    namespace: &str,
    spec: &VncSessionSpec,
    operator: OperatorCredentials<'_>,
) -> Result<(Found, Option<String>), kube::Error> {
    if spec.service_account_ref.is_some() {
        return Ok((
            Found::Missing(
                "spec.serviceAccountRef (keyless RRSA) is not supported by this operator version; \
                 use spec.credentialsRef"
                    .to_owned(),
            ),
            None,
        ));
    }
    let Some(reference) = &spec.credentials_ref else {
        return Ok((operator_credentials(namespace, operator), None));
    };
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

fn operator_credentials(namespace: &str, operator: OperatorCredentials) -> Found {
    if !operator.scope.offers(namespace) {
        return Found::Missing(format!(
            "spec.credentialsRef is not set and the operator does not offer its own credentials to \
             namespace {namespace} (--operator-credentials-namespaces, \
             ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES); reference a Secret in this namespace"
        ));
    }
    match operator.credentials {
        Some(c) => Found::Credentials(c.clone()),
        None => Found::Missing(
            "spec.credentialsRef is not set and the operator has no credentials of its own \
             (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET)"
                .to_owned(),
        ),
    }
}

/// The resourceVersion of the Secret a session references, as the metadata watch last saw it; no
/// API call. A name that is not a plain object name is never looked up.
pub fn version(cache: &SecretCache, namespace: &str, spec: &VncSessionSpec) -> Option<String> {
    let reference = spec.credentials_ref.as_ref()?;
    if !validate::dns1123_subdomain(&reference.name) {
        return None;
    }
    cache.version(namespace, &reference.name)
}
