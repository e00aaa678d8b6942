"""deploy/: the plain manifests (a kustomization), built by kubectl's kustomize."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from manifests import (
    CLUSTER_WIDE,
    CRD,
    CRD_COPIES,
    DEPLOY,
    OPERATOR_NAMESPACE as NS,
    SERVICE_ACCOUNT as SA,
    WATCHED_NAMESPACE,
    assert_hardened,
    assert_metrics_service,
    env_of,
    expected_grants,
    grants_of,
    load_all,
    of_kind,
    one,
    operator_container,
)


def kustomize(kubectl_path: str, directory) -> list[dict]:
    proc = subprocess.run(
        [kubectl_path, "kustomize", str(directory)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"kubectl kustomize {directory}:\n{proc.stderr}"
    return load_all(proc.stdout)


@pytest.fixture(scope="module")
def cluster_wide(kubectl_path):
    return kustomize(kubectl_path, DEPLOY)


@pytest.fixture(scope="module")
def namespaced(kubectl_path):
    return kustomize(kubectl_path, DEPLOY / "namespaced")


def test_crd_copies_are_byte_identical():
    generated = CRD.read_bytes()
    for copy in CRD_COPIES:
        assert copy.read_bytes() == generated, f"{copy} differs; run: cp {CRD} {copy}"


def null_enums(schema, path="") -> list[str]:
    if isinstance(schema, dict):
        found = [path] if None in (schema.get("enum") or []) else []
        return found + [p for k, v in schema.items() for p in null_enums(v, f"{path}.{k}")]
    if isinstance(schema, list):
        return [p for i, v in enumerate(schema) for p in null_enums(v, f"{path}[{i}]")]
    return []


def test_crd_enums_hold_no_null():
    """`null` in an enum makes kubectl's client-side validation fail ("unknown object type
    nil") and Kubernetes 1.20's API server refuse the CRD ("per-version schemas may not all be
    set to identical values"); `nullable: true` alone already admits null."""
    paths = null_enums(yaml.safe_load(CRD.read_text())["spec"])
    assert not paths, f"{CRD}: null in the enum at {paths}; drop it (nullable: true stays)"


def test_deploy_lists_base_and_its_rbac():
    """deploy/kustomization.yaml lists files (kubectl 1.20's kustomize takes no directories):
    exactly base/'s, plus rbac.yaml."""
    top = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())["resources"]
    assert sorted(top) == sorted([f"base/{r}" for r in base] + ["rbac.yaml"])


def test_cluster_wide_objects(cluster_wide):
    assert sorted((d["kind"], d["metadata"]["name"]) for d in cluster_wide) == [
        ("ClusterRole", "ecs-vnc-operator"),
        ("ClusterRoleBinding", "ecs-vnc-operator"),
        ("CustomResourceDefinition", "vncsessions.ecsvnc.dev"),
        ("Deployment", "ecs-vnc-operator"),
        ("Namespace", NS),
        ("Role", "ecs-vnc-operator-leader-election"),
        ("RoleBinding", "ecs-vnc-operator-leader-election"),
        ("Service", "ecs-vnc-operator-metrics"),
        ("ServiceAccount", SA),
    ]
    crd = one(cluster_wide, "CustomResourceDefinition")
    assert crd == yaml.safe_load(CRD.read_text())


def test_cluster_wide_rbac_is_exactly_what_the_operator_calls(cluster_wide):
    assert grants_of(cluster_wide, NS, SA) == expected_grants(None, NS)


def test_rbac_yaml_alone_grants_it(kubectl_path):
    # The end-to-end tests impersonate the ServiceAccount with deploy/rbac.yaml applied on its own.
    docs = load_all((DEPLOY / "rbac.yaml").read_text())
    assert grants_of(docs, NS, SA) == expected_grants(None, NS)


def test_deployment(cluster_wide):
    deployment = one(cluster_wide, "Deployment")
    assert deployment["metadata"]["namespace"] == NS
    assert deployment["spec"]["replicas"] == 1
    assert_hardened(deployment, one(cluster_wide, "ServiceAccount"))
    assert_metrics_service(one(cluster_wide, "Service"), deployment)
    container = operator_container(deployment)
    assert container["image"] == "ecs-vnc-operator:0.1.0"
    assert container["args"] == ["run", "--leader-elect", "--log-format", "json"]
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    env = env_of(container)
    assert "ECS_VNC_WATCH_NAMESPACE" not in env
    # Operator credentials: optional, and only ever by reference to a Secret.
    for var in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "ecs-vnc-operator-credentials" and ref["optional"] is True
    assert not of_kind(cluster_wide, "ConfigMap") and not of_kind(cluster_wide, "Secret")


def test_namespaced_variant_uses_roles_only(namespaced):
    assert not of_kind(namespaced, "ClusterRole") and not of_kind(namespaced, "ClusterRoleBinding")
    grants = grants_of(namespaced, NS, SA)
    assert CLUSTER_WIDE not in grants
    assert grants == expected_grants(WATCHED_NAMESPACE, NS)


def test_namespaced_variant_watches_the_namespace_it_grants(namespaced, cluster_wide):
    namespaces = {d["metadata"]["name"] for d in of_kind(namespaced, "Namespace")}
    assert namespaces == {NS, WATCHED_NAMESPACE}
    deployment = one(namespaced, "Deployment")
    env = env_of(operator_container(deployment))
    assert env["ECS_VNC_WATCH_NAMESPACE"] == {
        "name": "ECS_VNC_WATCH_NAMESPACE",
        "value": WATCHED_NAMESPACE,
    }
    # Otherwise the same Deployment as the cluster-wide one.
    without = copy.deepcopy(deployment)
    container = operator_container(without)
    container["env"] = [e for e in container["env"] if e["name"] != "ECS_VNC_WATCH_NAMESPACE"]
    assert without == one(cluster_wide, "Deployment")


def test_chart_defaults_match_deploy(render, cluster_wide):
    """Two ways to install, one set of permissions and one pod shape."""
    docs = render(namespace=NS, release="ecs-vnc-operator")
    assert grants_of(docs, NS, SA) == grants_of(cluster_wide, NS, SA)
    chart_pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    deploy_pod = one(cluster_wide, "Deployment")["spec"]["template"]["spec"]
    for key in (
        "securityContext",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "serviceAccountName",
        "terminationGracePeriodSeconds",
    ):
        assert chart_pod[key] == deploy_pod[key], key
    chart_c, deploy_c = chart_pod["containers"][0], deploy_pod["containers"][0]
    for key in (
        "securityContext",
        "resources",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "image",
    ):
        assert chart_c[key] == deploy_c[key], key
