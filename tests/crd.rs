//! `crds/vncsession.yaml` and its copies in `deploy/` and the chart must be exactly what
//! `ecs-vnc-operator crd` prints.

mod support;

use std::process::Command;

use support::paths::read;
use support::processes::output_ok;

fn printed() -> String {
    let mut crd = Command::new(env!("CARGO_BIN_EXE_ecs-vnc-operator"));
    let out = output_ok(crd.arg("crd"), "cargo test builds it");
    String::from_utf8(out.stdout).unwrap()
}

/// The CRD as committed: for `kubectl apply`, for kustomize, for Helm.
const COMMITTED: [&str; 3] = [
    "crds/vncsession.yaml",
    "deploy/base/crds/vncsession.yaml",
    "charts/ecs-vnc-operator/crds/vncsession.yaml",
];

#[test]
fn the_committed_crd_is_the_generated_one() {
    let generated = printed();
    for path in COMMITTED {
        let committed = read(path);
        assert!(
            committed == generated,
            "{path} drifted from the code: run `cargo run --bin ecs-vnc-operator -- crd > crds/vncsession.yaml && \
             cp crds/vncsession.yaml deploy/base/crds/ && cp crds/vncsession.yaml charts/ecs-vnc-operator/crds/`"
        );
    }
}

#[test]
fn the_crd_carries_the_contract() {
    let yaml = printed();
    for needle in [
        "name: vncsessions.ecsvnc.dev",
        "- vnc",
        "- ecsvnc",
        "scope: Namespaced",
        "name: v1alpha1",
        "status: {}",
        "name: URL Expires",
        "pattern: ^i-[a-z0-9]+$",
        "pattern: ^[a-z]{2,}(-[a-z0-9]+)+$",
        "maxLength: 64",
        "maxLength: 1024",
    ] {
        assert!(yaml.contains(needle), "CRD lacks {needle:?}");
    }
    assert!(
        yaml.contains("required:\n            - instanceId\n            - regionId\n"),
        "regionId and instanceId are required in spec"
    );
}
