//! Where a session's AccessKey comes from: a Secret in its own namespace, or the operator's env.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::aliyun::Credentials;
use crate::session::VncSessionSpec;

/// Credentials for one issue, or why there are none.
pub enum Found {
    Credentials(Credentials),
    /// The Secret or its keys are missing: the user must fix it.
    Missing(String),
}

/// Reads the credentials a session uses. The Secret is looked up in `namespace`, the session's own:
/// a `credentialsRef` cannot name another namespace.
pub async fn load(
    client: &kube::Client,
    namespace: &str,
    spec: &VncSessionSpec,
    operator: Option<&Credentials>,
) -> Result<(Found, Option<String>), kube::Error> {
    let Some(reference) = &spec.credentials_ref else {
        return Ok((
            match operator {
                Some(c) => Found::Credentials(c.clone()),
                None => Found::Missing(
                    "spec.credentialsRef is not set and the operator has no credentials of its own \
                     (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET)"
                        .to_owned(),
                ),
            },
            None,
        ));
    };
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
        Ok(c) => Found::Credentials(c),
        Err(e) => Found::Missing(format!("Secret {namespace}/{}: {e}", reference.name)),
    };
    Ok((found, version))
}

/// The resourceVersion of the Secret a session references, if it exists (metadata only).
pub async fn version(
    client: &kube::Client,
    namespace: &str,
    spec: &VncSessionSpec,
) -> Result<Option<String>, kube::Error> {
    let Some(reference) = &spec.credentials_ref else {
        return Ok(None);
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(secrets
        .get_metadata_opt(&reference.name)
        .await?
        .and_then(|m| m.metadata.resource_version))
}
