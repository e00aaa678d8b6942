"""deploy/components/keyless: the grant keyless sessions add to the cluster-wide deploy/, and the
switch that turns them on."""

from __future__ import annotations

import copy
import os

import yaml

from manifests import DEPLOY, env_of, expected_grants, grants_of, load_all, one, operator_container
from test_deploy import kustomize

COMPONENT = DEPLOY / "components" / "keyless"
NS = "ecs-vnc-system"
SA = "ecs-vnc-operator"
SWITCH = {"name": "ECS_VNC_KEYLESS_SESSIONS", "value": "true"}


def test_the_component_adds_the_service_account_grants_and_the_switch(kubectl_path, tmp_path):
    component = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY, tmp_path)],
                "components": [os.path.relpath(COMPONENT, tmp_path)],
            }
        )
    )
    with_it = kustomize(kubectl_path, tmp_path)
    without = kustomize(kubectl_path, DEPLOY)
    added = [d for d in with_it if d["kind"] != "Deployment" and d not in without]
    assert added == load_all((COMPONENT / "rbac.yaml").read_text())
    assert grants_of(without, NS, SA) == expected_grants(None, NS)
    assert grants_of(with_it, NS, SA) == expected_grants(None, NS, keyless=True)

    # The Deployment gains the switch and nothing else; the provider is left to the installer.
    deployment = one(with_it, "Deployment")
    env = env_of(operator_container(deployment))
    assert env["ECS_VNC_KEYLESS_SESSIONS"] == SWITCH
    assert "ALIBABA_CLOUD_OIDC_PROVIDER_ARN" not in env
    assert "ECS_VNC_KEYLESS_SESSIONS" not in env_of(operator_container(one(without, "Deployment")))
    unswitched = copy.deepcopy(deployment)
    container = operator_container(unswitched)
    container["env"] = [e for e in container["env"] if e != SWITCH]
    assert unswitched == one(without, "Deployment")
