//! The sessions a benchmark driver creates: names, instances spread round-robin, one Secret.

use ecs_vnc_operator::session::VncSession;
use serde_json::json;

#[derive(clap::Args, Clone, Debug)]
pub struct Spread {
    /// Instance ids are PREFIX000, PREFIX001, … (sessions spread round-robin).
    #[arg(long)]
    pub instance_prefix: String,
    #[arg(long)]
    pub instances: usize,
    #[arg(long, default_value = "cn-hangzhou")]
    pub region_id: String,
    /// Secret (in the namespace) with the AccessKey.
    #[arg(long)]
    pub credentials: String,
}

impl Spread {
    /// The instance the `i`-th session opens.
    pub fn instance(&self, i: usize) -> String {
        format!("{}{:03}", self.instance_prefix, i % self.instances.max(1))
    }

    /// A session labelled `bench=<label>` for `instance_id`, without `isWindows` (so the operator
    /// asks `DescribeInstances` once per session).
    pub fn session(
        &self,
        name: &str,
        instance_id: &str,
        label: &str,
    ) -> Result<VncSession, serde_json::Error> {
        serde_json::from_value(json!({
            "apiVersion": "ecsvnc.dev/v1alpha1",
            "kind": "VncSession",
            "metadata": {"name": name, "labels": {"bench": label}},
            "spec": {
                "regionId": self.region_id,
                "instanceId": instance_id,
                "credentialsRef": {"name": self.credentials},
                "reason": "benchmark",
            },
        }))
    }
}
