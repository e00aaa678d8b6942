"""deploy/ and the rendered chart against a real kube-apiserver (scripts/local-cluster.sh,
Kubernetes 1.20): the CRD is created for real, everything else passes a server-side dry-run
(admission, defaulting, schema and kubectl's client-side validation), and the RBAC of deploy/
gives the operator's ServiceAccount exactly its calls when the API server is asked."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import yaml

from conftest import K8S_BIN, stop
from manifests import (
    DEPLOY,
    LEASE_GRANTS,
    OPERATOR_NAMESPACE as NS,
    SERVICE_ACCOUNT as SA,
    SESSION_GRANTS,
    USER_ROLES,
    WATCHED_NAMESPACE,
    load_all,
    of_kind,
)
from test_deploy import kustomize

OPERATOR = f"system:serviceaccount:{NS}:{SA}"
# The identity a pod of the operator's ServiceAccount presents.
OPERATOR_GROUPS = ("system:serviceaccounts", f"system:serviceaccounts:{NS}", "system:authenticated")


def dry_run(cluster, docs) -> str:
    """Server-side dry-run of `docs`, after creating their namespaces for real."""
    for ns in sorted({d["metadata"].get("namespace") for d in docs} - {None}):
        cluster.ensure_namespace(ns)
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs))
    return out.stdout


def test_crd_is_created_for_real(cluster):
    cluster.install_crd()


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
            "image": {"digest": "sha256:" + "0" * 64},
            "credentials": {"existingSecret": "ecs-operator-key"},
            "operator": {
                "allowedEndpoints": ["https://*.aliyuncs.com", "https://ecs.vpc.example.internal"],
                "credentialsNamespaces": ["team-a", "team-b"],
            },
            "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
            "serviceMonitor": {"enabled": True},
            "imagePullSecrets": [{"name": "pull"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
            "networkPolicy": {
                "metricsFrom": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "observability"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                    },
                    {"ipBlock": {"cidr": "10.20.0.0/16", "except": ["10.20.1.0/24"]}},
                ],
                "egress": [
                    {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                    {
                        "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
                        "ports": [{"port": 443, "protocol": "TCP"}],
                    },
                ],
            },
        },
        {"networkPolicy": {"metricsFrom": []}, "rbac": {"userRoles": False}},
    ],
    ids=["defaults", "namespaced", "no-leader-election", "everything-on", "closed-no-user-roles"],
)
def test_chart_is_accepted(cluster, render, values):
    if values.get("serviceMonitor", {}).get("enabled"):
        cluster.install_prometheus_operator_crd("ServiceMonitor")
    docs = render(values, namespace="ecs-vnc-chart", release="vnc")
    out = dry_run(cluster, docs)
    assert out.count("(server dry run)") == len(docs), out


# --- RBAC, as the API server's authorizer sees it -------------------------------------------------

# Calls the operator never makes, (apiGroup, resource, verb); each must be refused everywhere.
NEVER = frozenset(
    # patch: the operator writes status only; its token must not be able to rewrite a grant.
    {
        ("ecsvnc.dev", "vncsessions", v)
        for v in ("create", "update", "patch", "delete", "deletecollection")
    }
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


def access_reviews(
    scope: str, grants, user: str = OPERATOR, groups: tuple[str, ...] = OPERATOR_GROUPS
) -> list[dict]:
    reviews = []
    for group, resource, verb in sorted(grants):
        resource, _, subresource = resource.partition("/")
        reviews.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": user,
                    "groups": list(groups),
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


def allowed_by_apiserver(cluster, scopes, **who) -> dict[str, set]:
    """Scope -> the grants (of EVERYTHING) the authorizer allows the operator (or `who`) there."""
    plan = [(scope, g) for scope in scopes for g in sorted(EVERYTHING)]
    reviews = [r for scope in scopes for r in access_reviews(scope, EVERYTHING, **who)]
    out = cluster.kubectl("create", "-o", "json", "-f", "-", input=yaml.safe_dump_all(reviews))
    items = json_stream(out.stdout)
    assert len(items) == len(plan)
    allowed: dict[str, set] = {scope: set() for scope in scopes}
    for (scope, grant), item in zip(plan, items):
        if item["status"].get("allowed"):
            allowed[scope].add(grant)
    return allowed


def assert_authorizer_allows(cluster, want: dict[str, frozenset], **who) -> None:
    """RBAC changes reach the authorizer through an informer: allow it a few seconds."""
    deadline = time.monotonic() + 15
    while True:
        got = allowed_by_apiserver(cluster, list(want), **who)
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
    for rbac, want in [
        (
            DEPLOY / "rbac.yaml",
            {
                ALL_NAMESPACES: SESSION_GRANTS,
                "elsewhere": SESSION_GRANTS,
                NS: SESSION_GRANTS | LEASE_GRANTS,
            },
        ),
        (
            DEPLOY / "namespaced" / "rbac.yaml",
            {
                ALL_NAMESPACES: nothing,
                "elsewhere": nothing,
                WATCHED_NAMESPACE: SESSION_GRANTS,
                NS: LEASE_GRANTS,
            },
        ),
    ]:
        manifests = yaml.safe_dump_all(load_all(rbac.read_text()))
        cluster.kubectl("apply", "-f", "-", input=manifests)
        try:
            assert_authorizer_allows(cluster, want)
        finally:
            cluster.kubectl("delete", "-f", "-", input=manifests)


# --- The people's ClusterRoles, aggregated by Kubernetes' own controller --------------------------

# Every verb on sessions and their status: what a person may do with them is exactly the set asked.
SESSION_VERBS = frozenset(
    {
        ("ecsvnc.dev", "vncsessions", v)
        for v in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
    }
    | {("ecsvnc.dev", "vncsessions/status", v) for v in ("get", "update", "patch")}
)


def allowed_sessions(cluster, user: str, namespace: str) -> set:
    reviews = access_reviews(namespace, SESSION_VERBS, user=user, groups=("system:authenticated",))
    out = cluster.kubectl("create", "-o", "json", "-f", "-", input=yaml.safe_dump_all(reviews))
    items = json_stream(out.stdout)
    return {g for g, item in zip(sorted(SESSION_VERBS), items) if item["status"].get("allowed")}


def aggregated_rules(cluster, role: str) -> list[dict]:
    out = cluster.kubectl("get", "clusterrole", role, "-o", "json")
    return json.loads(out.stdout).get("rules") or []


def role_bindings(holders: dict[str, str], namespace: str) -> list[dict]:
    """A RoleBinding in `namespace` per user -> ClusterRole of `holders`."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{user}-{role.replace(':', '-')}", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
        for user, role in holders.items()
    ]


def wait_for_aggregation(cluster, aggregator: subprocess.Popen, log) -> None:
    """Until each of our roles' rules is in the built-in roles it is aggregated into."""
    # (built-in role, ours)
    want_in = [("view", "view")]
    want_in += [(role, ours) for role in ("edit", "admin") for ours in ("open", "edit")]
    deadline = time.monotonic() + 30
    while True:
        missing = [
            (role, ours)
            for role, ours in want_in
            if not any(
                r.get("apiGroups") == ["ecsvnc.dev"]
                and r.get("resources") == ["vncsessions"]
                and set(r.get("verbs", [])) == {v for _, _, v in USER_ROLES[ours][1]}
                for r in aggregated_rules(cluster, role)
            )
        ]
        if not missing:
            return
        assert aggregator.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"not aggregated into {missing} after 30 s"
        time.sleep(0.3)


def test_user_roles_join_view_edit_admin(cluster, tmp_path):
    """deploy/'s (and the chart's, which test_deploy proves equal) ClusterRoles for people,
    applied for real and aggregated by kube-controller-manager's clusterrole-aggregation
    controller (started here: scripts/local-cluster.sh runs only the controllers the operator
    needs): `view` in a namespace reads sessions there, `edit` and `admin` may also patch them
    (kubectl vnc open), a direct binding of :open only reads them (a patch could rewrite the
    grant); none may create, change status or delete, and nothing leaks into other namespaces.
    Then real patches, each with the user's own client certificate: :open gets 403, `edit` not."""
    roles = load_all((DEPLOY / "base" / "user-roles.yaml").read_text())
    assert sorted(r["metadata"]["name"] for r in of_kind(roles, "ClusterRole")) == [
        "ecs-vnc-operator:edit",
        "ecs-vnc-operator:open",
        "ecs-vnc-operator:view",
    ]
    cluster.install_crd()
    team, elsewhere = "team-people", "elsewhere-people"
    for ns in (team, elsewhere):
        cluster.ensure_namespace(ns)
    holders = {"alice": "view", "bob": "edit", "carol": "admin", "dave": "ecs-vnc-operator:open"}
    manifest = yaml.safe_dump_all(roles + role_bindings(holders, team))
    cluster.kubectl("apply", "-f", "-", input=manifest)
    env = dict(os.environ, KUBECONFIG=str(cluster.dir / "kubeconfig"))
    with open(tmp_path / "kube-controller-manager.log", "w") as log:
        aggregator = subprocess.Popen(
            [
                str(K8S_BIN / "kube-controller-manager"),
                f"--kubeconfig={cluster.dir / 'kubeconfig'}",
                "--controllers=clusterrole-aggregation",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_aggregation(cluster, aggregator, tmp_path / "kube-controller-manager.log")
        want = {
            "alice": USER_ROLES["view"][1],
            "bob": USER_ROLES["edit"][1],
            "carol": USER_ROLES["edit"][1],
            "dave": USER_ROLES["open"][1],
        }
        deadline = time.monotonic() + 15
        while True:
            got = {user: allowed_sessions(cluster, user, team) for user in holders}
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        for user, role in holders.items():
            extra, missing = sorted(got[user] - want[user]), sorted(want[user] - got[user])
            assert got[user] == want[user], (
                f"{user} ({role} in {team}): allowed but not meant {extra}; "
                f"meant but refused {missing}"
            )
            assert allowed_sessions(cluster, user, elsewhere) == set(), f"{user} in {elsewhere}"
        patches_as_the_people(cluster, team, tmp_path)
    finally:
        # Deleted while the controller still runs, so it takes the rules out of view/edit/admin.
        cluster.kubectl("delete", "--ignore-not-found", "-f", "-", input=manifest)
        deadline = time.monotonic() + 15
        while aggregator.poll() is None and time.monotonic() < deadline:
            view = aggregated_rules(cluster, "view")
            if not any("vncsessions" in r.get("resources", []) for r in view):
                break
            time.sleep(0.3)
        stop(aggregator)


def patches_as_the_people(cluster, namespace: str, tmp_path) -> None:
    """A grant patched by dave (:open only) and bob (`edit`), each authenticated by a client
    certificate of his own: dave can neither rewrite the grant nor set the refresh annotation
    (403 Forbidden, nothing changed) but still reads it; bob sets the annotation."""
    session = {
        "apiVersion": "ecsvnc.dev/v1alpha1",
        "kind": "VncSession",
        "metadata": {"name": "web-1", "namespace": namespace},
        "spec": {
            "regionId": "cn-hangzhou",
            "instanceId": "i-bp1grant",
            "credentialsRef": {"name": "ecs-key"},
            "ttl": "30m",
        },
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(session))
    path = f"/apis/ecsvnc.dev/v1alpha1/namespaces/{namespace}/vncsessions/web-1"
    merge = "application/merge-patch+json"
    # What a holder of :open did before issue 23: point a grant at another instance, for longer.
    rewrite = {
        "spec": {
            "instanceId": "i-bp1other",
            "ttl": "8760h",
            "endpoint": "https://ecs.cn-hangzhou.aliyuncs.com",
        }
    }
    refresh = {"metadata": {"annotations": {"ecsvnc.dev/refresh": "by-bob"}}}
    try:
        dave = cluster.client_certificate("dave", tmp_path)
        for patch in (rewrite, refresh):
            status, body = cluster.request_as(dave, "PATCH", path, patch, merge)
            assert (status, body.get("reason")) == (403, "Forbidden"), (patch, status, body)
            assert 'User "dave" cannot patch' in body.get("message", ""), body
        status, body = cluster.request_as(dave, "GET", path)
        assert status == 200, body
        assert body["spec"] == session["spec"], "dave's patch changed the grant"
        assert "ecsvnc.dev/refresh" not in (body["metadata"].get("annotations") or {})

        bob = cluster.client_certificate("bob", tmp_path)
        status, body = cluster.request_as(bob, "PATCH", path, refresh, merge)
        assert status == 200, body
        assert body["metadata"]["annotations"]["ecsvnc.dev/refresh"] == "by-bob"
    finally:
        cluster.kubectl("delete", "--ignore-not-found", "-f", "-", input=yaml.safe_dump(session))
