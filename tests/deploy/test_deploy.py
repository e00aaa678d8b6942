"""deploy/: the plain manifests (a kustomization), built by kubectl's kustomize."""

from __future__ import annotations

import copy
import os
import subprocess

import pytest
import yaml

from manifests import (
    CLUSTER_WIDE,
    CRD,
    CRD_COPIES,
    DEFAULT_METRICS_FROM,
    DEPLOY,
    OPERATOR_NAMESPACE as NS,
    SERVICE_ACCOUNT as SA,
    WATCHED_NAMESPACE,
    assert_hardened,
    assert_metrics_service,
    assert_network_policy,
    env_of,
    expected_grants,
    expected_user_roles,
    grants_of,
    is_user_role,
    load_all,
    of_kind,
    one,
    operator_container,
    user_roles,
)

COMPONENT = DEPLOY / "components" / "network-policy"


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
    """deploy/kustomization.yaml lists files (kubectl 1.20's kustomize takes no directories
    and no components): exactly base/'s, plus rbac.yaml and the network-policy component's
    NetworkPolicy."""
    top = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    base = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())["resources"]
    assert set(top) == {"apiVersion", "kind", "resources"}, "files only (kustomize v2.0.3)"
    assert sorted(top["resources"]) == sorted(
        [f"base/{r}" for r in base]
        + ["rbac.yaml", "components/network-policy/networkpolicy.yaml"]
    )


def test_cluster_wide_objects(cluster_wide):
    assert sorted((d["kind"], d["metadata"]["name"]) for d in cluster_wide) == [
        ("ClusterRole", "ecs-vnc-operator"),
        ("ClusterRole", "ecs-vnc-operator:edit"),
        ("ClusterRole", "ecs-vnc-operator:open"),
        ("ClusterRole", "ecs-vnc-operator:view"),
        ("ClusterRoleBinding", "ecs-vnc-operator"),
        ("CustomResourceDefinition", "vncsessions.ecsvnc.dev"),
        ("Deployment", "ecs-vnc-operator"),
        ("Namespace", NS),
        ("NetworkPolicy", "ecs-vnc-operator"),
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


@pytest.mark.parametrize("variant", ["", "namespaced"], ids=["cluster-wide", "namespaced"])
def test_user_roles_are_aggregated_not_bound(kubectl_path, variant):
    """People get ecs-vnc-operator:view (into `view`), :open (into `edit` and `admin`, reads
    only) and :edit (into `edit` and `admin`, with the patch `kubectl vnc open` needs); nothing
    in deploy/ binds them."""
    docs = kustomize(kubectl_path, DEPLOY / variant)
    assert user_roles(docs) == expected_user_roles()
    bound = {b["roleRef"]["name"] for b in of_kind(docs, "ClusterRoleBinding")}
    bound |= {b["roleRef"]["name"] for b in of_kind(docs, "RoleBinding")}
    assert not bound & set(expected_user_roles())


@pytest.mark.parametrize("variant", ["", "namespaced"], ids=["cluster-wide", "namespaced"])
def test_network_policy(kubectl_path, variant):
    """Both builds ship the NetworkPolicy of components/network-policy: ingress only to the
    metrics port from the `monitoring` namespace, egress open."""
    docs = kustomize(kubectl_path, DEPLOY / variant)
    assert_network_policy(
        one(docs, "NetworkPolicy"), one(docs, "Deployment"), DEFAULT_METRICS_FROM
    )


def test_network_policy_component(kubectl_path, tmp_path):
    """components/network-policy is a kustomize Component that adds exactly that NetworkPolicy
    to a kustomization of one's own built on base/, and deploy/namespaced's copy of its file is
    the same object."""
    component = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # Relative: kustomize refuses absolute roots.
                "resources": [os.path.relpath(DEPLOY / "base", tmp_path)],
                "components": [os.path.relpath(COMPONENT, tmp_path)],
            }
        )
    )
    probe = subprocess.run(
        [kubectl_path, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    if 'unknown field "components"' in probe.stderr:
        pytest.fail(
            f"{kubectl_path}'s kustomize predates components (kustomize >= 3.7, kubectl >= 1.21; "
            "Debian's kubernetes-client 1.20 embeds v2.0.3): put a newer kubectl first on PATH",
            pytrace=False,
        )
    with_it = kustomize(kubectl_path, tmp_path)
    without = kustomize(kubectl_path, DEPLOY / "base")
    added = [d for d in with_it if d not in without]
    assert [d["kind"] for d in added] == ["NetworkPolicy"]
    assert len(with_it) == len(without) + 1
    policy = load_all((COMPONENT / "networkpolicy.yaml").read_text())
    assert added == policy
    assert load_all((DEPLOY / "namespaced" / "network-policy.yaml").read_text()) == policy


def test_deployment(cluster_wide):
    deployment = one(cluster_wide, "Deployment")
    assert deployment["metadata"]["namespace"] == NS
    assert deployment["spec"]["replicas"] == 1
    assert_hardened(deployment, one(cluster_wide, "ServiceAccount"))
    assert_metrics_service(one(cluster_wide, "Service"), deployment)
    container = operator_container(deployment)
    assert container["image"] == "ecs-vnc-operator:0.1.0"
    assert container["imagePullPolicy"] == "Always"
    assert container["args"] == [
        "run", "--leader-elect", "--log-format", "json", "--health-addr", "0.0.0.0:8081"
    ]
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    env = env_of(container)
    # Every namespace is watched; the operator's defaults hold for endpoints (ECS's own hosts)
    # and for operator credentials (offered to no namespace).
    for var in (
        "ECS_VNC_WATCH_NAMESPACE",
        "ECS_VNC_ALLOWED_ENDPOINTS",
        "ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES",
    ):
        assert var not in env, var
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
    # The only ClusterRoles are the people's, aggregated into view/edit/admin and bound to no one.
    assert all(is_user_role(d) for d in of_kind(namespaced, "ClusterRole"))
    assert not of_kind(namespaced, "ClusterRoleBinding")
    grants = grants_of(namespaced, NS, SA)
    assert CLUSTER_WIDE not in grants
    assert grants == expected_grants(WATCHED_NAMESPACE, NS)


def test_namespaced_variant_watches_the_namespace_it_grants(namespaced, cluster_wide):
    """It watches the namespace its Roles grant, and offers the operator's own credentials
    there (and nowhere else)."""
    namespaces = {d["metadata"]["name"] for d in of_kind(namespaced, "Namespace")}
    assert namespaces == {NS, WATCHED_NAMESPACE}
    deployment = one(namespaced, "Deployment")
    env = env_of(operator_container(deployment))
    added = ("ECS_VNC_WATCH_NAMESPACE", "ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES")
    for var in added:
        assert env[var] == {"name": var, "value": WATCHED_NAMESPACE}
    # Otherwise the same Deployment as the cluster-wide one.
    without = copy.deepcopy(deployment)
    container = operator_container(without)
    container["env"] = [e for e in container["env"] if e["name"] not in added]
    assert without == one(cluster_wide, "Deployment")


def test_chart_defaults_match_deploy(render, cluster_wide):
    """Two ways to install, one set of permissions, one pod shape, one NetworkPolicy."""
    docs = render(namespace=NS, release="ecs-vnc-operator")
    assert grants_of(docs, NS, SA) == grants_of(cluster_wide, NS, SA)
    assert user_roles(docs) == user_roles(cluster_wide)
    chart_policy, deploy_policy = one(docs, "NetworkPolicy"), one(cluster_wide, "NetworkPolicy")
    for key in ("policyTypes", "ingress"):
        assert chart_policy["spec"][key] == deploy_policy["spec"][key], key
    assert "egress" not in chart_policy["spec"] and "egress" not in deploy_policy["spec"]
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
        "imagePullPolicy",
    ):
        assert chart_c[key] == deploy_c[key], key
