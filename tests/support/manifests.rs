//! VncSession manifests for a test's namespace: the demo Linux instance with the namespace's
//! Secret, with the operator's own credentials, or keyless through a ServiceAccount.

use serde_json::{Value, json};

use super::ecs_sim::LINUX;
use super::env::Env;

impl Env {
    /// A session for the demo Linux instance with the namespace's Secret, plus `extra` spec fields.
    pub fn session(&self, name: &str, extra: Value) -> Value {
        let mut spec = json!({
            "regionId": "cn-hangzhou", "instanceId": LINUX,
            "credentialsRef": {"name": "ecs-credentials"}, "reason": "e2e test",
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                spec.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": "ecsvnc.dev/v1alpha1", "kind": "VncSession",
               "metadata": {"name": name, "namespace": self.ns}, "spec": spec})
    }

    /// [`Env::session`] with the operator's own credentials: no `credentialsRef`.
    pub fn own_key_session(&self, name: &str, extra: Value) -> Value {
        let mut session = self.session(name, extra);
        let spec = session["spec"].as_object_mut().unwrap();
        spec.remove("credentialsRef");
        session
    }

    /// [`Env::own_key_session`] that opens with ServiceAccount `sa`'s role (keyless).
    pub fn keyless_session(&self, name: &str, sa: &str, extra: Value) -> Value {
        let mut session = self.own_key_session(name, extra);
        session["spec"]["serviceAccountRef"] = json!({"name": sa});
        session
    }
}
