"""Pure helpers over rendered manifests: what the operator needs, what a manifest set grants."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ecs-vnc-operator"
DEPLOY = REPO / "deploy"
CRD = REPO / "crds" / "vncsession.yaml"
CRD_COPIES = (DEPLOY / "base" / "crds" / "vncsession.yaml", CHART / "crds" / "vncsession.yaml")

OPERATOR_NAMESPACE = "ecs-vnc-system"
SERVICE_ACCOUNT = "ecs-vnc-operator"
# deploy/namespaced/ watches this namespace.
WATCHED_NAMESPACE = "ecs-vnc-sessions"

# (apiGroup, resource, verb): every Kubernetes call the operator makes, and nothing else. It
# only reads sessions (no patch: its token cannot rewrite a grant's spec) and writes their
# status; kube-rs's Recorder creates an Event and patches it into a series when it repeats.
SESSION_GRANTS = frozenset(
    {("ecsvnc.dev", "vncsessions", v) for v in ("get", "list", "watch")}
    | {("ecsvnc.dev", "vncsessions/status", "patch")}
    | {("", "secrets", v) for v in ("get", "list", "watch")}
    | {("events.k8s.io", "events", v) for v in ("create", "patch")}
)
# Keyless sessions (spec.serviceAccountRef), only when the operator is given an OIDC provider:
# a metadata watch of ServiceAccounts for their role annotation, and a token of one for STS.
KEYLESS_GRANTS = frozenset(
    {("", "serviceaccounts", v) for v in ("list", "watch")}
    | {("", "serviceaccounts/token", "create")}
)
# Leader election, in the operator's own namespace only.
LEASE_GRANTS = frozenset(
    {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
)

CLUSTER_WIDE = "*"
# `run --health-addr`'s port in both installs: /healthz and /readyz for the kubelet.
HEALTH_PORT = 8081

# ClusterRoles for people, aggregated into the built-in roles: name suffix -> (the built-in
# roles they join, what they grant). `kubectl vnc open` patches the refresh annotation, which
# only :edit may: a patch can rewrite the whole grant, so :open has none.
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
READ_SESSIONS = frozenset({("ecsvnc.dev", "vncsessions", v) for v in ("get", "list", "watch")})
USER_ROLES = {
    "view": (frozenset({"view"}), READ_SESSIONS),
    "open": (frozenset({"edit", "admin"}), READ_SESSIONS),
    "edit": (
        frozenset({"edit", "admin"}),
        READ_SESSIONS | {("ecsvnc.dev", "vncsessions", "patch")},
    ),
}

Doc = dict[str, Any]
Grants = dict[str, set[tuple[str, str, str]]]


def load_all(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def expected_grants(
    watch: str | None, operator_ns: str, leader_election: bool = True, keyless: bool = False
) -> Grants:
    """Scope (a namespace, or CLUSTER_WIDE) -> the (group, resource, verb) the operator may use."""
    grants: Grants = defaultdict(set)
    grants[watch or CLUSTER_WIDE] |= SESSION_GRANTS
    if keyless:
        grants[watch or CLUSTER_WIDE] |= KEYLESS_GRANTS
    if leader_election:
        grants[operator_ns] |= LEASE_GRANTS
    return dict(grants)


def of_kind(docs: Iterable[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: Iterable[Doc], kind: str) -> Doc:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def ns_of(doc: Doc) -> str | None:
    return doc.get("metadata", {}).get("namespace")


def is_user_role(doc: Doc) -> bool:
    """A ClusterRole for people: aggregated into a built-in role, bound by nothing here."""
    labels = doc.get("metadata", {}).get("labels") or {}
    return doc["kind"] == "ClusterRole" and any(k.startswith(AGGREGATE) for k in labels)


def rule_grants(rules: list[Doc], where: str) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of plain rules; fails on wildcards, resourceNames and URLs."""
    grants = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"{where}: unexpected {rule}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"{where}: wildcard in {rule}"
                    grants.add((group, resource, verb))
    return grants


def user_roles(docs: list[Doc]) -> dict[str, tuple[frozenset, frozenset]]:
    """Name -> (built-in roles it is aggregated into, its grants), for the people's roles."""
    found = {}
    for doc in filter(is_user_role, docs):
        labels = doc["metadata"]["labels"]
        into = frozenset(
            k[len(AGGREGATE):] for k, v in labels.items() if k.startswith(AGGREGATE) and v == "true"
        )
        assert all(v == "true" for k, v in labels.items() if k.startswith(AGGREGATE)), labels
        assert "aggregationRule" not in doc, doc["metadata"]["name"]
        name = doc["metadata"]["name"]
        found[name] = (into, frozenset(rule_grants(doc.get("rules") or [], name)))
    return found


def expected_user_roles(prefix: str = "ecs-vnc-operator") -> dict[str, tuple[frozenset, frozenset]]:
    return {f"{prefix}:{suffix}": roles for suffix, roles in USER_ROLES.items()}


def grants_of(docs: list[Doc], sa_namespace: str, sa_name: str) -> Grants:
    """What the manifests let the ServiceAccount do, per scope, resolving bindings to roles.

    Fails on anything a reviewer would have to think twice about: wildcards, resourceNames,
    non-resource URLs, a binding that names other subjects or a role the manifests do not hold,
    and roles that nothing binds (except the people's ClusterRoles, which are aggregated into
    the built-in ones and must not be bound here: see user_roles).
    """
    roles: dict[tuple[str, str | None, str], list[Doc]] = {}
    for doc in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
        if is_user_role(doc):
            continue
        ns = ns_of(doc) if doc["kind"] == "Role" else None
        assert (
            doc["kind"] == "ClusterRole" or ns
        ), f"Role {doc['metadata']['name']} has no namespace"
        roles[(doc["kind"], ns, doc["metadata"]["name"])] = doc.get("rules") or []

    grants: Grants = defaultdict(set)
    bound = set()
    for binding in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding"):
        name = binding["metadata"]["name"]
        subjects = binding.get("subjects") or []
        assert subjects == [
            {"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}
        ], f"{binding['kind']} {name} binds {subjects}, not only the operator's ServiceAccount"
        ref = binding["roleRef"]
        assert ref["apiGroup"] == "rbac.authorization.k8s.io", ref
        if binding["kind"] == "ClusterRoleBinding":
            assert ref["kind"] == "ClusterRole", f"{name}: {ref}"
            scope = CLUSTER_WIDE
        else:
            scope = ns_of(binding)
            assert scope, f"RoleBinding {name} has no namespace"
        key = (ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])
        assert (
            key in roles
        ), f"{binding['kind']} {name} refers to {key}, which is not in the manifests"
        bound.add(key)
        grants[scope] |= rule_grants(roles[key], str(key))
    assert bound == set(roles), f"roles bound to nothing: {set(roles) - bound}"
    return dict(grants)


def pod_spec(deployment: Doc) -> Doc:
    return deployment["spec"]["template"]["spec"]


def operator_container(deployment: Doc) -> Doc:
    containers = pod_spec(deployment)["containers"]
    assert [c["name"] for c in containers] == ["operator"], containers
    return containers[0]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of `--flag=value` or `--flag value` in a container's args."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1:]
    return None


def assert_hardened(
    deployment: Doc, service_account: Doc | None, health_port: int = HEALTH_PORT
) -> None:
    """The pod hardening of the models: non-root, read-only root, no capabilities, seccomp,
    limits, probes on the operator's health listener, and a token only where it is used."""
    spec = pod_spec(deployment)
    pod_sc = spec["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == 65532
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(forbidden), forbidden
    assert spec["automountServiceAccountToken"] is True, "the operator talks to the API server"
    assert spec["enableServiceLinks"] is False
    # The operator waits up to 20 s for in-flight reconciles after SIGTERM.
    assert spec["terminationGracePeriodSeconds"] > 20
    if service_account is not None:
        assert spec["serviceAccountName"] == service_account["metadata"]["name"]
        assert service_account["automountServiceAccountToken"] is False

    c = operator_container(deployment)
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert not sc.get("privileged")
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), c["resources"]
    assert c["ports"] == [
        {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
        {"name": "health", "containerPort": health_port, "protocol": "TCP"},
    ]
    # The probes have a listener of their own, whose slots clients of the metrics port cannot take.
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert flag_value(c["args"], "--health-addr") == f"0.0.0.0:{health_port}"
    env = env_of(c)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for e in env.values():
        if e["name"].startswith("ALIBABA_CLOUD_"):
            assert "value" not in e, f"{e['name']} must come from a Secret, not an inline value"


def assert_metrics_service(service: Doc, deployment: Doc) -> None:
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items(), (selector, pod_labels)
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A LabelSelector with matchLabels only (what these manifests use) against labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return selector.get("matchLabels", {}).items() <= labels.items()


def assert_network_policy(policy: Doc, deployment: Doc, metrics_from: list[Doc]) -> None:
    """The operator pod's NetworkPolicy: it selects the pod, admits only `metrics_from` and only
    to the metrics port, and leaves egress alone (no Egress policy type, no egress rules). No
    pod may reach the health port: the kubelet probes from the node, which no policy blocks."""
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert ns_of(policy) == ns_of(deployment)
    assert selects(policy["spec"]["podSelector"], pod_labels), (policy["spec"], pod_labels)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "egress" not in policy["spec"]
    assert policy["spec"]["ingress"] == [
        {"from": metrics_from, "ports": [{"port": 8080, "protocol": "TCP"}]}
    ]
    port = operator_container(deployment)["ports"][0]
    assert port["containerPort"] == 8080 and port["protocol"] == "TCP"


# Who may scrape by default: pods in the namespace named `monitoring`.
DEFAULT_METRICS_FROM = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
]
