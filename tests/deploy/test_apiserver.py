"""deploy/ and the rendered chart against a real kube-apiserver (scripts/local-cluster.sh,
Kubernetes 1.20): the CRD is created for real, everything else passes a server-side dry-run
(admission, defaulting, schema and kubectl's client-side validation), and the RBAC of deploy/
gives the operator's ServiceAccount exactly its calls when the API server is asked."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from manifests import (
    CRD,
    DEPLOY,
    LEASE_GRANTS,
    OPERATOR_NAMESPACE as NS,
    SERVICE_ACCOUNT as SA,
    SESSION_GRANTS,
    WATCHED_NAMESPACE,
    load_all,
)
from test_deploy import kustomize

OPERATOR = f"system:serviceaccount:{NS}:{SA}"

# A stand-in for the Prometheus Operator's CRD, so a ServiceMonitor has a kind to be checked
# against (its schema is the Prometheus Operator's business, not ours).
SERVICE_MONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names:
    kind: ServiceMonitor
    listKind: ServiceMonitorList
    plural: servicemonitors
    singular: servicemonitor
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


def dry_run(cluster, docs) -> str:
    """Server-side dry-run of `docs`, after creating their namespaces for real."""
    for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None}):
        cluster.ensure_namespace(ns)
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs))
    return out.stdout


def crd_established(cluster, name: str) -> None:
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")


def test_crd_is_created_for_real(cluster):
    cluster.kubectl("apply", "-f", str(CRD))
    crd_established(cluster, "vncsessions.ecsvnc.dev")


@pytest.mark.parametrize("variant", ["", "namespaced"], ids=["cluster-wide", "namespaced"])
def test_deploy_is_accepted(cluster, kubectl_path, variant):
    docs = kustomize(kubectl_path, DEPLOY / variant)
    # The CRD in deploy/ is crds/vncsession.yaml (test_deploy checks), proven above on its own.
    rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    out = dry_run(cluster, rest)
    assert out.count("(server dry run)") == len(rest), out


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespace": "team-a"},
        {"leaderElection": {"enabled": False}},
        {
            "replicaCount": 2,
            "credentials": {"existingSecret": "ecs-operator-key"},
            "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
            "serviceMonitor": {"enabled": True},
            "imagePullSecrets": [{"name": "pull"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
        },
    ],
    ids=["defaults", "namespaced", "no-leader-election", "everything-on"],
)
def test_chart_is_accepted(cluster, render, values):
    if values.get("serviceMonitor", {}).get("enabled"):
        cluster.kubectl("apply", "-f", "-", input=SERVICE_MONITOR_CRD)
        crd_established(cluster, "servicemonitors.monitoring.coreos.com")
    docs = render(values, namespace="ecs-vnc-chart", release="vnc")
    out = dry_run(cluster, docs)
    assert out.count("(server dry run)") == len(docs), out


# --- RBAC, as the API server's authorizer sees it -------------------------------------------------

# Calls the operator never makes, (apiGroup, resource, verb); each must be refused everywhere.
NEVER = frozenset(
    {("ecsvnc.dev", "vncsessions", v) for v in ("create", "update", "delete", "deletecollection")}
    | {("ecsvnc.dev", "vncsessions/status", v) for v in ("get", "update")}
    | {("", "secrets", v) for v in ("create", "update", "patch", "delete")}
    | {("", "configmaps", "get"), ("", "pods", "list"), ("", "serviceaccounts/token", "create")}
    # core/v1 Events: the operator writes events.k8s.io ones
    | {("", "events", "create"), ("events.k8s.io", "events", "delete")}
    | {("coordination.k8s.io", "leases", v) for v in ("list", "watch", "patch", "delete")}
    | {("apiextensions.k8s.io", "customresourcedefinitions", "get")}
    | {("rbac.authorization.k8s.io", "roles", "create")}
)
EVERYTHING = SESSION_GRANTS | LEASE_GRANTS | NEVER
ALL_NAMESPACES = ""


def access_reviews(scope: str, grants) -> list[dict]:
    reviews = []
    for group, resource, verb in sorted(grants):
        resource, _, subresource = resource.partition("/")
        reviews.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    # The identity a pod of this ServiceAccount presents.
                    "user": OPERATOR,
                    "groups": [
                        "system:serviceaccounts",
                        f"system:serviceaccounts:{NS}",
                        "system:authenticated",
                    ],
                    "resourceAttributes": {
                        "namespace": scope,
                        "group": group,
                        "resource": resource,
                        "subresource": subresource,
                        "verb": verb,
                    },
                },
            }
        )
    return reviews


def json_stream(text: str) -> list[dict]:
    """kubectl prints one JSON document per created object, back to back."""
    decoder, items, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return items
        item, at = decoder.raw_decode(text, at)
        items.append(item)


def allowed_by_apiserver(cluster, scopes) -> dict[str, set]:
    """Scope -> the grants (of EVERYTHING) the authorizer allows the operator there."""
    plan = [(scope, g) for scope in scopes for g in sorted(EVERYTHING)]
    reviews = [r for scope in scopes for r in access_reviews(scope, EVERYTHING)]
    out = cluster.kubectl("create", "-o", "json", "-f", "-", input=yaml.safe_dump_all(reviews))
    items = json_stream(out.stdout)
    assert len(items) == len(plan)
    allowed: dict[str, set] = {scope: set() for scope in scopes}
    for (scope, grant), item in zip(plan, items):
        if item["status"].get("allowed"):
            allowed[scope].add(grant)
    return allowed


def assert_authorizer_allows(cluster, want: dict[str, frozenset]) -> None:
    """RBAC changes reach the authorizer through an informer: allow it a few seconds."""
    deadline = time.monotonic() + 15
    while True:
        got = allowed_by_apiserver(cluster, list(want))
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for scope in want:
        where = scope or "all namespaces"
        assert got[scope] == want[scope], (
            f"in {where}: allowed but not needed {sorted(got[scope] - want[scope])}; "
            f"needed but refused {sorted(want[scope] - got[scope])}"
        )


def test_deploy_rbac_grants_exactly_the_operator_calls(cluster):
    """deploy/'s RBAC applied for real, then the authorizer asked with the operator's identity."""
    for ns in (NS, WATCHED_NAMESPACE, "elsewhere"):
        cluster.ensure_namespace(ns)
    nothing = frozenset()

    cluster_rbac = yaml.safe_dump_all(load_all((DEPLOY / "rbac.yaml").read_text()))
    cluster.kubectl("apply", "-f", "-", input=cluster_rbac)
    try:
        assert_authorizer_allows(
            cluster,
            {
                ALL_NAMESPACES: SESSION_GRANTS,
                "elsewhere": SESSION_GRANTS,
                NS: SESSION_GRANTS | LEASE_GRANTS,
            },
        )
    finally:
        cluster.kubectl("delete", "-f", "-", input=cluster_rbac)

    namespaced_rbac = yaml.safe_dump_all(
        load_all((DEPLOY / "namespaced" / "rbac.yaml").read_text())
    )
    cluster.kubectl("apply", "-f", "-", input=namespaced_rbac)
    try:
        assert_authorizer_allows(
            cluster,
            {
                ALL_NAMESPACES: nothing,
                "elsewhere": nothing,
                WATCHED_NAMESPACE: SESSION_GRANTS,
                NS: LEASE_GRANTS,
            },
        )
    finally:
        cluster.kubectl("delete", "-f", "-", input=namespaced_rbac)
