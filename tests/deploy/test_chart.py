"""charts/ecs-vnc-operator, linted and rendered by real Helm (the Helm v4 SDK, in-process)."""

from __future__ import annotations

import pytest
import yaml

from manifests import (
    CHART,
    CLUSTER_WIDE,
    CRD,
    DEFAULT_METRICS_FROM,
    REPO,
    assert_hardened,
    assert_metrics_service,
    assert_network_policy,
    env_of,
    expected_grants,
    expected_user_roles,
    grants_of,
    is_user_role,
    of_kind,
    one,
    operator_container,
    user_roles,
)

NS = "ecs-vnc-system"
SA = "ecs-vnc-operator"
# The only lint finding allowed: there is no project icon to point at.
ALLOWED_LINT = {(1, "Chart.yaml", "icon is recommended")}


def kinds(docs):
    return sorted(d["kind"] for d in docs)


def args_of(docs):
    return operator_container(one(docs, "Deployment"))["args"]


@pytest.mark.parametrize(
    "values",
    [
        None,
        {"watchNamespace": "team-a"},
        {"leaderElection": {"enabled": False}, "serviceMonitor": {"enabled": True}},
    ],
    ids=["defaults", "namespaced", "no-leader-election+servicemonitor"],
)
def test_lints_clean(helm, values):
    report = helm.lint(str(CHART), values, strict=True)
    findings = {(m["severity"], m["path"], m["error"]) for m in report["messages"]}
    assert report["errors"] == [] and findings <= ALLOWED_LINT, report


def test_defaults_render_the_cluster_wide_operator(render):
    docs = render()
    assert kinds(docs) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert args_of(docs) == [
        "run",
        "--log-format=json",
        "--url-validity=15s",
        "--session-keepalive=300s",
        "--reconnect-limit-per-minute=30",
        "--ecs-requests-per-second=20",
        "--health-addr=0.0.0.0:8081",
        "--leader-elect",
        "--lease-name=ecs-vnc-operator",
    ]
    container = operator_container(deployment)
    assert container["image"] == "ecs-vnc-operator:0.1.0"
    assert container["imagePullPolicy"] == "Always"
    # Not rendered: the operator's defaults hold (endpoints: ECS's own hosts, operator
    # credentials offered to no namespace).
    assert set(env_of(container)) == {"POD_NAME", "POD_NAMESPACE"}
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    assert_hardened(deployment, one(docs, "ServiceAccount"))
    assert_metrics_service(one(docs, "Service"), deployment)
    assert_network_policy(one(docs, "NetworkPolicy"), deployment, DEFAULT_METRICS_FROM)
    assert user_roles(docs) == expected_user_roles()
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NS, doc["metadata"]


def test_rbac_is_exactly_what_the_operator_calls(render):
    assert grants_of(render(), NS, SA) == expected_grants(None, NS)


def test_namespaced_mode_uses_roles_only(render):
    docs = render({"watchNamespace": "team-a"})
    # The only ClusterRoles are the people's, aggregated into view/edit/admin and bound to no one.
    assert all(is_user_role(d) for d in of_kind(docs, "ClusterRole"))
    assert user_roles(docs) == expected_user_roles()
    assert not of_kind(docs, "ClusterRoleBinding")
    grants = grants_of(docs, NS, SA)
    assert CLUSTER_WIDE not in grants
    assert grants == expected_grants("team-a", NS)
    assert "--watch-namespace=team-a" in args_of(docs)


def test_namespaced_mode_in_the_release_namespace(render):
    assert grants_of(render({"watchNamespace": NS}), NS, SA) == expected_grants(NS, NS)


def test_without_leader_election_there_is_no_lease_grant(render):
    docs = render({"leaderElection": {"enabled": False}})
    assert grants_of(docs, NS, SA) == expected_grants(None, NS, leader_election=False)
    assert not [a for a in args_of(docs) if a.startswith(("--leader-elect", "--lease-name"))]


def test_several_replicas_with_leader_election(render):
    docs = render({"replicaCount": 3})
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert "--leader-elect" in args_of(docs)


def test_several_replicas_without_leader_election_fail(helm, render):
    with pytest.raises(helm.HelmError, match="replicaCount 2 needs leaderElection.enabled=true"):
        render({"replicaCount": 2, "leaderElection": {"enabled": False}})


def test_one_replica_without_leader_election_is_fine(render):
    docs = render({"replicaCount": 1, "leaderElection": {"enabled": False}})
    assert one(docs, "Deployment")["spec"]["replicas"] == 1


def test_operator_flags(render):
    docs = render(
        {
            "operator": {
                "ecsEndpoint": "https://ecs-vpc.cn-hangzhou.example.internal",
                "urlValidity": "10s",
                "sessionKeepalive": "5m",
                "consoleBaseUrl": "https://console.example.internal/vnc/index.html",
                "reconnectLimitPerMinute": 12,
                "ecsRequestsPerSecond": 5,
                "logFormat": "text",
                "healthPort": 9443,
            }
        }
    )
    assert args_of(docs) == [
        "run",
        "--log-format=text",
        "--url-validity=10s",
        "--session-keepalive=5m",
        "--reconnect-limit-per-minute=12",
        "--ecs-requests-per-second=5",
        "--health-addr=0.0.0.0:9443",
        "--ecs-endpoint=https://ecs-vpc.cn-hangzhou.example.internal",
        "--console-base-url=https://console.example.internal/vnc/index.html",
        "--leader-elect",
        "--lease-name=ecs-vnc-operator",
    ]
    # The health port moves the container port and the probes with the flag.
    assert_hardened(one(docs, "Deployment"), None, health_port=9443)


ENDPOINTS = ["https://*.aliyuncs.com", "http://ecs.vpc.example.internal:8080", "https://[fd00::1]"]


@pytest.mark.parametrize(
    "values, expected",
    [
        (
            {"allowedEndpoints": ENDPOINTS[:1]},
            {"ECS_VNC_ALLOWED_ENDPOINTS": "https://*.aliyuncs.com"},
        ),
        ({"allowedEndpoints": ENDPOINTS}, {"ECS_VNC_ALLOWED_ENDPOINTS": ",".join(ENDPOINTS)}),
        ({"credentialsNamespaces": ["*"]}, {"ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES": "*"}),
        (
            {
                "credentialsNamespaces": ["team-a", "ops"],
                "allowedEndpoints": ["https://ecs.example.internal"],
            },
            {
                "ECS_VNC_OPERATOR_CREDENTIALS_NAMESPACES": "team-a,ops",
                "ECS_VNC_ALLOWED_ENDPOINTS": "https://ecs.example.internal",
            },
        ),
        ({"allowedEndpoints": [], "credentialsNamespaces": []}, {}),
    ],
    ids=["one-endpoint", "endpoints", "all-namespaces", "both", "empty-lists"],
)
def test_endpoint_and_credential_settings_become_env(render, values, expected):
    """operator.allowedEndpoints and operator.credentialsNamespaces reach the operator as its
    env vars, comma-separated, and only when set (the binary holds the defaults)."""
    container = operator_container(one(render({"operator": values}), "Deployment"))
    env = env_of(container)
    rendered = {k: v["value"] for k, v in env.items() if k not in ("POD_NAME", "POD_NAMESPACE")}
    assert rendered == expected


def test_image_digest_pins_the_image(render):
    digest = "sha256:" + "0123456789abcdef" * 4
    docs = render({"image": {"repository": "r.example/ecs-vnc-operator", "digest": digest}})
    container = operator_container(one(docs, "Deployment"))
    assert container["image"] == f"r.example/ecs-vnc-operator:0.1.0@{digest}"


def test_user_roles(render):
    """<fullname>:view, :open and :edit, aggregated and bound to no one; off with
    rbac.userRoles=false or rbac.create=false; named after the release, so releases coexist."""
    docs = render()
    assert user_roles(docs) == expected_user_roles()
    bindings = of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding")
    assert not {b["roleRef"]["name"] for b in bindings} & set(expected_user_roles())
    assert user_roles(render(release="vnc")) == expected_user_roles("vnc-ecs-vnc-operator")
    off = render({"rbac": {"userRoles": False}})
    assert not user_roles(off)
    assert grants_of(off, NS, SA) == expected_grants(None, NS)
    assert not user_roles(render({"rbac": {"create": False}}))


def test_network_policy_settings(render):
    deployment = one(render(), "Deployment")
    peers = [
        {
            "namespaceSelector": {"matchLabels": {"team": "observability"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        },
        {"ipBlock": {"cidr": "10.20.0.0/16"}},
    ]
    custom = one(render({"networkPolicy": {"metricsFrom": peers}}), "NetworkPolicy")
    assert_network_policy(custom, deployment, peers)
    # [] lets nobody in (an ingress rule without `from` would let everybody in).
    closed = one(render({"networkPolicy": {"metricsFrom": []}}), "NetworkPolicy")
    assert closed["spec"]["ingress"] == [] and closed["spec"]["policyTypes"] == ["Ingress"]
    # Egress rules restrict egress to them.
    egress = [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]},
    ]
    restricted = one(render({"networkPolicy": {"egress": egress}}), "NetworkPolicy")
    assert restricted["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert restricted["spec"]["egress"] == egress
    assert restricted["spec"]["ingress"] == one(render(), "NetworkPolicy")["spec"]["ingress"]
    assert not of_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")


def test_credentials_come_from_an_existing_secret(render):
    docs = render({"credentials": {"existingSecret": "ecs-operator-key"}})
    env = env_of(operator_container(one(docs, "Deployment")))
    for var, key, optional in [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "accessKeyId", False),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "accessKeySecret", False),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", "securityToken", True),
    ]:
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "ecs-operator-key" and ref["key"] == key
        assert ref.get("optional", False) is optional
    # Never a copy of the credentials anywhere else in the release.
    assert not of_kind(docs, "ConfigMap") and not of_kind(docs, "Secret")


def test_extra_env_is_appended(render):
    extra = [
        {"name": "RUST_LOG", "value": "debug"},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    env = operator_container(one(render({"extraEnv": extra}), "Deployment"))["env"]
    assert env[-2:] == extra


def test_image_and_scheduling_settings(render):
    docs = render(
        {
            "image": {
                "repository": "registry.example.internal/ecs-vnc-operator",
                "tag": "0.2.0",
                "pullPolicy": "Always",
            },
            "imagePullSecrets": [{"name": "pull"}],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "ops", "operator": "Exists"}]}
                        ]
                    }
                }
            },
            "priorityClassName": "system-cluster-critical",
            "podAnnotations": {"a": "b"},
            # null drops a default key (Helm's merge), here the CPU limit.
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"cpu": None, "memory": "64Mi"},
            },
        }
    )
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "registry.example.internal/ecs-vnc-operator:0.2.0"
    assert container["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in spec["affinity"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert container["resources"]["limits"] == {"memory": "64Mi"}


def test_service_monitor(render):
    assert not of_kind(render(), "ServiceMonitor")
    docs = render(
        {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}}}
    )
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = one(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NS]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}
    ]


def test_existing_service_account_and_no_rbac(helm, render):
    docs = render({"serviceAccount": {"create": False, "name": "mine"}, "rbac": {"create": False}})
    assert kinds(docs) == ["Deployment", "NetworkPolicy", "Service"]
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    with pytest.raises(helm.HelmError, match="serviceAccount.name is required"):
        render({"serviceAccount": {"create": False}})


def test_release_name_shapes_object_names(render):
    docs = render(release="vnc", namespace="ops")
    assert one(docs, "Deployment")["metadata"]["name"] == "vnc-ecs-vnc-operator"
    assert "--lease-name=vnc-ecs-vnc-operator" in args_of(docs)
    assert grants_of(docs, "ops", "vnc-ecs-vnc-operator") == expected_grants(None, "ops")


def test_chart_crd_is_the_generated_crd(helm):
    with helm.Chart.load(str(CHART)) as chart:
        crds = chart.crds
    assert [c["filename"] for c in crds] == ["ecs-vnc-operator/crds/vncsession.yaml"]
    assert yaml.safe_load(crds[0]["data"]) == yaml.safe_load(CRD.read_text())


# --- values.schema.json ----------------------------------------------------------------------

def test_the_readme_values_table_names_every_value():
    """The README's values table is the chart's documentation: every value (leaf keys of the
    maps that hold settings) has a row, and no row names a value the chart does not have."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (REPO / "README.md").read_text()
    section = readme.split("| value | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set()
    for row in section.splitlines()[2:]:
        cell = row.split("|")[1]
        names = [n.strip().strip("`") for n in cell.replace(",", "/").split("/")]
        stem = names[0].split(".")[0]
        for n in names:
            documented.add(stem + n if n.startswith(".") else n)
    expected = set()
    for key, value in values.items():
        # Maps of free-form content (resources, security contexts, selectors) are one row.
        settings = isinstance(value, dict) and key in {
            "image", "serviceAccount", "rbac", "leaderElection", "operator", "credentials",
            "service", "serviceMonitor", "networkPolicy", "rrsa",
        }
        if settings:
            expected |= {f"{key}.{sub}" for sub in value}
        else:
            expected.add(key)
    assert expected - documented == set(), "values missing from the README table"
    assert documented - expected == set(), "README rows for values the chart does not have"
