"""The chart's keyless settings (rrsa.*, operator.oidcProviderArn), rendered by real Helm."""

from __future__ import annotations

import pytest

from manifests import (
    CLUSTER_WIDE,
    KEYLESS_GRANTS,
    env_of,
    expected_grants,
    grants_of,
    one,
    operator_container,
    pod_spec,
)

NS = "ecs-vnc-system"
SA = "ecs-vnc-operator"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
ROLE = "acs:ram::1234567890123456:role/ecs-vnc-operator"
TOKEN_DIR = "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens"


def test_without_a_provider_there_is_no_service_account_grant(render):
    docs = render()
    env = env_of(operator_container(one(docs, "Deployment")))
    assert not {"ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_ROLE_ARN"} & set(env)
    assert not KEYLESS_GRANTS & grants_of(docs, NS, SA)[CLUSTER_WIDE]
    assert "volumes" not in pod_spec(one(docs, "Deployment"))
    container = operator_container(one(docs, "Deployment"))
    assert "--keyless-sessions" not in container["args"] and "ECS_VNC_KEYLESS_SESSIONS" not in env


@pytest.mark.parametrize("watch", [None, "team-a"], ids=["cluster", "namespaced"])
def test_the_switch_turns_on_keyless_sessions_where_sessions_are_watched(render, watch):
    values = {
        "operator": {
            "oidcProviderArn": PROVIDER,
            "keylessSessions": True,
            "stsEndpoint": "https://sts-vpc.cn-hangzhou.aliyuncs.com",
        }
    }
    if watch:
        values["watchNamespace"] = watch
    docs = render(values)
    assert grants_of(docs, NS, SA) == expected_grants(watch, NS, keyless=True)
    container = operator_container(one(docs, "Deployment"))
    env = env_of(container)
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]["value"] == PROVIDER
    assert env["ECS_VNC_STS_ENDPOINT"]["value"] == "https://sts-vpc.cn-hangzhou.aliyuncs.com"
    # The operator serves serviceAccountRef only with the switch as well as the provider.
    assert container["args"].count("--keyless-sessions") == 1
    # The provider alone is not operator-level RRSA.
    assert "ALIBABA_CLOUD_ROLE_ARN" not in env and "ALIBABA_CLOUD_OIDC_TOKEN_FILE" not in env


def test_operator_rrsa_alone_does_not_turn_on_keyless_sessions(render):
    docs = render({"operator": {"oidcProviderArn": PROVIDER}, "rrsa": {"enabled": True, "roleArn": ROLE}})
    container = operator_container(one(docs, "Deployment"))
    assert "--keyless-sessions" not in container["args"]
    assert not KEYLESS_GRANTS & grants_of(docs, NS, SA)[CLUSTER_WIDE]


def test_rrsa_projects_an_sts_token_and_sets_the_official_environment(render):
    docs = render(
        {
            "operator": {"oidcProviderArn": PROVIDER},
            "rrsa": {"enabled": True, "roleArn": ROLE, "tokenExpirationSeconds": 7200},
        }
    )
    deployment = one(docs, "Deployment")
    container = operator_container(deployment)
    env = env_of(container)
    assert env["ALIBABA_CLOUD_ROLE_ARN"]["value"] == ROLE
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"]["value"] == PROVIDER
    assert env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]["value"] == f"{TOKEN_DIR}/token"
    assert env["ALIBABA_CLOUD_ROLE_SESSION_NAME"]["value"] == "ecs-vnc-operator"
    # No AccessKey anywhere.
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" not in env
    [mount] = container["volumeMounts"]
    assert mount == {"name": "rrsa-oidc-token", "mountPath": TOKEN_DIR, "readOnly": True}
    [volume] = pod_spec(deployment)["volumes"]
    [source] = volume["projected"]["sources"]
    assert source["serviceAccountToken"] == {
        "path": "token",
        "audience": "sts.aliyuncs.com",
        "expirationSeconds": 7200,
    }
    # The root filesystem stays read-only: the token is a volume.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    "values, message",
    [
        ({"rrsa": {"enabled": True}, "operator": {"oidcProviderArn": PROVIDER}}, "rrsa.roleArn"),
        ({"rrsa": {"enabled": True, "roleArn": ROLE}}, "operator.oidcProviderArn"),
        ({"operator": {"keylessSessions": True}}, "operator.oidcProviderArn"),
        (
            {
                "rrsa": {"enabled": True, "roleArn": ROLE},
                "operator": {"oidcProviderArn": PROVIDER},
                "credentials": {"existingSecret": "key"},
            },
            "credentials.existingSecret",
        ),
    ],
    ids=["no-role", "no-provider", "keyless-without-provider", "and-an-accesskey"],
)
def test_rrsa_without_its_parts_fails_naming_the_missing_one(helm, render, values, message):
    with pytest.raises(helm.HelmError, match=message):
        render(values)
