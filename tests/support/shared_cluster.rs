//! The one private control plane of a test binary, started on first use, with what a platform
//! team installs before the operator runs: the CRD, the operator's namespace, ServiceAccount and
//! RBAC from `deploy/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::cluster::Cluster;
use super::paths::root;

/// The operator's namespace in `deploy/`.
pub const OPERATOR_NS: &str = "ecs-vnc-system";

struct Shared {
    cluster: Cluster,
    operator_kubeconfig: PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let cluster = Cluster::start();
        // On 1.20 the CRD is applied (kubectl 1.20 cannot validate its CEL rules, so without
        // client-side validation); on the 1.36 hybrid `up` installed it on the 1.36 server.
        cluster.install_vncsession_crd();
        for file in [
            "deploy/base/namespace.yaml",
            "deploy/base/serviceaccount.yaml",
            "deploy/rbac.yaml",
        ] {
            cluster.apply_file(&root().join(file));
        }
        let operator_kubeconfig =
            cluster.service_account_kubeconfig(OPERATOR_NS, "ecs-vnc-operator");
        Shared {
            cluster,
            operator_kubeconfig,
        }
    })
}

/// The control plane (started, and set up, on the first call).
pub fn cluster() -> &'static Cluster {
    &shared().cluster
}

/// A kubeconfig of the `deploy/` ServiceAccount the operator runs as.
pub fn operator_kubeconfig() -> &'static Path {
    &shared().operator_kubeconfig
}

/// [`cluster`] without blocking an async runtime's thread while it starts.
pub async fn cluster_async() -> &'static Cluster {
    tokio::task::spawn_blocking(cluster).await.unwrap()
}
