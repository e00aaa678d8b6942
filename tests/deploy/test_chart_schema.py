"""charts/ecs-vnc-operator/values.schema.json: bad values are refused before anything renders,
by real Helm (the Helm v4 SDK, in-process)."""

from __future__ import annotations

import pytest

from manifests import CHART


REJECTED = [
    ({"replicaCount": "2"}, "/replicaCount"),
    ({"replicaCount": -1}, "/replicaCount"),
    ({"replicaCount": 11}, "/replicaCount"),
    ({"replicaCount": 1.5}, "/replicaCount"),
    ({"unknownKey": True}, "unknownKey"),
    ({"image": {"repository": "x", "registry": "y"}}, "registry"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"operator": {"logFormat": "xml"}}, "/operator/logFormat"),
    ({"operator": {"logFormat": "JSON"}}, "/operator/logFormat"),
    ({"operator": {"urlValidity": "15"}}, "/operator/urlValidity"),
    ({"operator": {"urlValidity": 15}}, "/operator/urlValidity"),
    ({"operator": {"sessionKeepalive": "5 minutes"}}, "/operator/sessionKeepalive"),
    # Zero parses as a duration but the operator refuses it: a crash loop, so the schema refuses it.
    ({"operator": {"urlValidity": "0s"}}, "/operator/urlValidity"),
    ({"operator": {"sessionKeepalive": "0m"}}, "/operator/sessionKeepalive"),
    ({"operator": {"sessionKeepalive": "00h0m"}}, "/operator/sessionKeepalive"),
    ({"operator": {"reconnectLimitPerMinute": -1}}, "/operator/reconnectLimitPerMinute"),
    ({"operator": {"reconnectLimitPerMinute": 0}}, "/operator/reconnectLimitPerMinute"),
    ({"operator": {"reconnectLimitPerMinute": 1001}}, "/operator/reconnectLimitPerMinute"),
    ({"operator": {"reconnectLimitPerMinute": "30"}}, "/operator/reconnectLimitPerMinute"),
    ({"operator": {"ecsRequestsPerSecond": -1}}, "/operator/ecsRequestsPerSecond"),
    ({"operator": {"ecsRequestsPerSecond": 10001}}, "/operator/ecsRequestsPerSecond"),
    ({"operator": {"ecsEndpoint": "ecs.cn-hangzhou.aliyuncs.internal"}}, "/operator/ecsEndpoint"),
    ({"operator": {"leaderElect": True}}, "leaderElect"),
    ({"leaderElection": {"enabled": "yes"}}, "/leaderElection/enabled"),
    ({"watchNamespace": "Team_A"}, "/watchNamespace"),
    ({"credentials": {"existingSecret": "s", "accessKeyId": "LTAI"}}, "accessKeyId"),
    ({"extraEnv": [{"value": "no name"}]}, "/extraEnv/0"),
    ({"extraEnv": {"A": "b"}}, "/extraEnv"),
    ({"service": {"port": 70000}}, "/service/port"),
    ({"serviceMonitor": {"enabled": "true"}}, "/serviceMonitor/enabled"),
    ({"serviceMonitor": {"interval": "often"}}, "/serviceMonitor/interval"),
    ({"nodeSelector": {"zone": 1}}, "/nodeSelector/zone"),
    ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ({"image": {"digest": "0123456789abcdef" * 4}}, "/image/digest"),
    ({"rbac": {"userRoles": "yes"}}, "/rbac/userRoles"),
    ({"operator": {"allowedEndpoints": "https://*.aliyuncs.com"}}, "/operator/allowedEndpoints"),
] + [
    ({"operator": {"allowedEndpoints": [pattern]}}, "/operator/allowedEndpoints/0")
    for pattern in (
        "ecs.aliyuncs.com",
        "ftp://ecs.aliyuncs.com",
        "https://ecs.aliyuncs.com/path",
        "https://a.example,https://b.example",
        "https://user@ecs.aliyuncs.com",
        "https://ecs.*.aliyuncs.com",
        "https://*.",
    )
] + [
    ({"operator": {"credentialsNamespaces": "team-a"}}, "/operator/credentialsNamespaces"),
    ({"operator": {"credentialsNamespaces": ["Team_A"]}}, "/operator/credentialsNamespaces/0"),
    ({"operator": {"credentialsNamespaces": ["a,b"]}}, "/operator/credentialsNamespaces/0"),
    ({"operator": {"credentialsNamespaces": ["a", "a"]}}, "/operator/credentialsNamespaces"),
    ({"operator": {"healthPort": 8080}}, "/operator/healthPort"),
    ({"operator": {"healthPort": 80}}, "/operator/healthPort"),
    ({"operator": {"healthPort": "8081"}}, "/operator/healthPort"),
    ({"networkPolicy": {"enabled": "true"}}, "/networkPolicy/enabled"),
    ({"networkPolicy": {"ingress": []}}, "ingress"),
    ({"networkPolicy": {"metricsFrom": {"namespaceSelector": {}}}}, "/networkPolicy/metricsFrom"),
    ({"networkPolicy": {"metricsFrom": [{}]}}, "/networkPolicy/metricsFrom/0"),
    ({"networkPolicy": {"metricsFrom": [{"namespace": "monitoring"}]}}, "namespace"),
    ({"networkPolicy": {"egress": {"to": []}}}, "/networkPolicy/egress"),
    ({"networkPolicy": {"egress": [{"from": []}]}}, "from"),
    ({"rrsa": {"audience": "x"}}, "audience"),
] + [
    # The keyless settings (test_chart_keyless.py renders the good ones): section, key, value.
    ({section: {key: value}}, f"/{section}/{key}")
    for section, key, value in (
        ("operator", "oidcProviderArn", "acs:ram::1:role/x"),
        ("operator", "oidcProviderArn", "arn:aws:iam::1:oidc-provider/x"),
        ("operator", "stsEndpoint", "sts.aliyuncs.com"),
        ("operator", "keylessSessions", "true"),
        ("rrsa", "roleArn", "acs:ram::1:oidc-provider/x"),
        ("rrsa", "enabled", "yes"),
        ("rrsa", "tokenExpirationSeconds", 60),
    )
]


@pytest.mark.parametrize("values, where", REJECTED, ids=[w for _, w in REJECTED])
def test_schema_rejects(helm, render, values, where):
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(err.value), str(err.value)
    # And an install stops on it too.
    with pytest.raises(helm.HelmError, match="schema"):
        render(values)


def test_schema_accepts_the_defaults_and_a_full_set(helm):
    full = {
        "global": {},
        "replicaCount": 2,
        "image": {
            "repository": "r/ecs-vnc-operator",
            "tag": "v0.1.0-rc.1",
            "digest": "sha256:" + "ab" * 32,
            "pullPolicy": "Never",
        },
        "watchNamespace": "team-a",
        "operator": {
            "urlValidity": "1h30m",
            "sessionKeepalive": "1d",
            "ecsEndpoint": "http://127.0.0.1:9000",
            "allowedEndpoints": ["https://*.aliyuncs.com", "http://127.0.0.1:9000"],
            "credentialsNamespaces": ["*"],
            "healthPort": 65535,
        },
        "rbac": {"create": True, "userRoles": False},
        "networkPolicy": {
            "enabled": True,
            "metricsFrom": [{"podSelector": {}}],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        },
        "credentials": {"existingSecret": "ecs.key"},
        "serviceAccount": {"create": True, "name": "op", "annotations": {"a": "b"}},
        "service": {"type": "ClusterIP", "port": 9090},
        "serviceMonitor": {
            "enabled": True,
            "interval": "500ms",
            "scrapeTimeout": "1m",
            "labels": {},
        },
    }
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.merge_values({}))
        chart.validate_schema(chart.merge_values(full))


def test_the_health_port_cannot_be_unset(helm, render):
    # null deletes the default; the probes and --health-addr would name port 0.
    with pytest.raises(helm.HelmError, match="missing property 'healthPort'"):
        render({"operator": {"healthPort": None}})
