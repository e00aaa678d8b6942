//! The `VncSession` custom resource (`vncsessions.ecsvnc.dev/v1alpha1`): a grant to open one ECS
//! instance's console, and the status the operator keeps for it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Setting this annotation to a new value asks for a new URL; each value is served once.
pub const REFRESH_ANNOTATION: &str = "ecsvnc.dev/refresh";

/// A grant: "this instance may be opened from the console".
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "ecsvnc.dev",
    version = "v1alpha1",
    kind = "VncSession",
    namespaced,
    status = "VncSessionStatus",
    derive = "PartialEq",
    shortname = "vnc",
    category = "ecsvnc",
    doc = "A grant of break-glass VNC console access to one Alibaba Cloud ECS instance.",
    printcolumn = r#"{"name": "Instance", "type": "string", "jsonPath": ".spec.instanceId"}"#,
    printcolumn = r#"{"name": "Region", "type": "string", "jsonPath": ".spec.regionId"}"#,
    printcolumn = r#"{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "URL Expires", "type": "string", "jsonPath": ".status.urlExpiresAt"}"#,
    printcolumn = r#"{"name": "Refreshable", "type": "boolean", "jsonPath": ".status.refreshable"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
// Cross-field rules for API servers with CEL (1.25+); the controller checks the same rules for
// older servers (`validate::spec`).
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!(has(self.credentialsRef) && has(self.serviceAccountRef))",
        "message": "set at most one of credentialsRef and serviceAccountRef",
        "fieldPath": ".serviceAccountRef",
    },
    {
        "rule": "!has(self.endpoint) || !self.endpoint.matches('^[a-z]+://[^/]*@')",
        "message": "must not carry user info (user:password@); credentials come from a Secret, a ServiceAccount or the operator",
        "fieldPath": ".endpoint",
    },
]))]
pub struct VncSessionSpec {
    /// Region of the instance, e.g. `cn-hangzhou`.
    #[schemars(regex(pattern = r"^[a-z]{2,}(-[a-z0-9]+)+$"), length(max = 64))]
    pub region_id: String,

    /// ECS instance id, e.g. `i-bp1hzoinajzkh91h1234`.
    #[schemars(regex(pattern = r"^i-[a-z0-9]+$"), length(max = 64))]
    pub instance_id: String,

    /// Secret in the same namespace with `accessKeyId`, `accessKeySecret` and optional
    /// `securityToken`. With neither this nor `serviceAccountRef`: the operator's own
    /// credentials, if the operator offers them to this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<CredentialsRef>,

    /// Keyless: a ServiceAccount in the same namespace, annotated `ecsvnc.dev/role-arn`, whose
    /// token is exchanged through STS `AssumeRoleWithOIDC` for that RAM role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_ref: Option<ServiceAccountRef>,

    /// Whether the instance runs Windows. Absent: read once from DescribeInstances `OSType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_windows: Option<bool>,

    /// Why access is needed; recorded in Events. One line of text: no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    pub reason: Option<String>,

    /// How long the grant lasts from creation (`30m`, `8h`, `1h30m`); then it is `Closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h|d))+$"), length(max = 32))]
    pub ttl: Option<String>,

    /// ECS endpoint override (e.g. a VPC endpoint): `https://` or `http://`, a host and an optional
    /// port, nothing more (no path, no `\`, `%`, whitespace or control characters); it must match
    /// one of the operator's `--allowed-endpoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // RE2 (the API server's regexp): `\p{C}` is every control and format character, `\p{Z}` every
    // space; URL parsers read `\` as `/` and decode `%`, so neither may hide a path or a host.
    #[schemars(
        regex(pattern = r"^https?://[^\s\p{Z}\p{C}/?#@\\%]+/?$"),
        length(max = 512)
    )]
    pub endpoint: Option<String>,
}

/// Names an object (a Secret, a ServiceAccount) in the session's own namespace; there is
/// deliberately no namespace field.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// The object's name (a DNS-1123 subdomain).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
}

/// `spec.credentialsRef`: a Secret in the session's namespace.
pub type CredentialsRef = LocalObjectRef;
/// `spec.serviceAccountRef`: a ServiceAccount in the session's namespace.
pub type ServiceAccountRef = LocalObjectRef;

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    Pending,
    Ready,
    UrlExpired,
    Expired,
    Failed,
    Closed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Ready => "Ready",
            Phase::UrlExpired => "UrlExpired",
            Phase::Expired => "Expired",
            Phase::Failed => "Failed",
            Phase::Closed => "Closed",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VncSessionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "phase_schema")]
    pub phase: Option<Phase>,
    /// The console page with the VncUrl; only while `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// The VncUrl exactly as ECS returned it; only while `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnc_url: Option<String>,
    /// When the issuing request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// After this instant the URL no longer opens a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_expires_at: Option<Time>,
    /// The latest an idle console connection opened in time can live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expires_at: Option<Time>,
    #[serde(default)]
    pub refreshable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_windows: Option<bool>,
    /// RequestId of the last successful ECS call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// URLs issued after the first one.
    #[serde(default)]
    pub refresh_count: u32,
    /// The last `ecsvnc.dev/refresh` value the operator acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_refresh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// When a retryable failure or a throttled issue is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<Time>,
    /// Failed attempts in a row for the current request; drives the backoff.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_failures: u32,
    /// resourceVersion of the credentials Secret when a credentials failure was recorded, so that
    /// a changed Secret is tried again without a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A plain string enum: the derived schema for `Option<Phase>` lists `null` among the values,
/// which Kubernetes 1.20's validation rejects.
fn phase_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Pending, Ready, UrlExpired, Expired, Failed or Closed.",
        "type": "string",
        "enum": ["Pending", "Ready", "UrlExpired", "Expired", "Failed", "Closed"],
    })
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `{code, message}` from ECS or the operator; never a RequestId (it changes on every retry).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LastError {
    pub code: String,
    pub message: String,
}

/// The `Ready` condition, shaped like `metav1.Condition` so `kubectl wait --for=condition=Ready` works.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl VncSessionStatus {
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == "Ready")
    }
}

/// The CRD as YAML, exactly what `ecs-vnc-operator crd` prints and `crds/vncsession.yaml` holds.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let body = serde_yaml::to_string(&VncSession::crd()).expect("the CRD always serialises");
    format!("# Generated by `ecs-vnc-operator crd`; do not edit by hand.\n{body}")
}
