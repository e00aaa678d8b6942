"""deploy/components/keyless: the grant keyless sessions add to the cluster-wide deploy/."""

from __future__ import annotations

import os

import yaml

from manifests import DEPLOY, expected_grants, grants_of, load_all
from test_deploy import kustomize

COMPONENT = DEPLOY / "components" / "keyless"
NS = "ecs-vnc-system"
SA = "ecs-vnc-operator"


def test_the_component_adds_exactly_the_service_account_grants(kubectl_path, tmp_path):
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
    added = [d for d in with_it if d not in without]
    assert added == load_all((COMPONENT / "rbac.yaml").read_text())
    assert grants_of(without, NS, SA) == expected_grants(None, NS)
    assert grants_of(with_it, NS, SA) == expected_grants(None, NS, keyless=True)
