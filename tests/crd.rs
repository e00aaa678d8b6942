//! `crds/vncsession.yaml` and its copies in `deploy/` and the chart must be exactly what
//! `ecs-vnc-operator crd` prints.

use std::process::Command;

fn printed() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ecs-vnc-operator"))
        .arg("crd")
        .output()
        .expect("run ecs-vnc-operator crd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_committed_crd_is_the_generated_one() {
    let root = env!("CARGO_MANIFEST_DIR");
    let generated = printed();
    for path in [
        "crds/vncsession.yaml",
        "deploy/base/crds/vncsession.yaml",
        "charts/ecs-vnc-operator/crds/vncsession.yaml",
    ] {
        let committed = std::fs::read_to_string(format!("{root}/{path}"))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
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
