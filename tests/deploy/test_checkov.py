"""An independent scanner users run in their pipelines: checkov (PyPI `checkov`,
`--framework kubernetes`) on what is actually applied: the chart rendered by real Helm, and the
kustomize builds of deploy/ and deploy/namespaced/ (never patch fragments on their own). Every
failed check must be in checkov-skips.yaml with its justification, and every entry there must
still match a finding."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import FIX_PYTHON
from manifests import DEPLOY
from test_deploy import kustomize

SKIPS = Path(__file__).with_name("checkov-skips.yaml")
PINNED = "sha256:" + "0123456789abcdef" * 4

# checkov's banner asks the package index for a newer checkov on every run; this runs checkov
# without that (no network), exactly as its console script otherwise does.
RUNNER = """
import sys, warnings
import checkov.common.version_manager as version_manager
version_manager.check_for_update = lambda *args, **kwargs: None
from checkov.main import Checkov
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sys.exit(Checkov(sys.argv[1:]).run())
"""


def chart_targets(render) -> dict[str, str]:
    return {
        "chart-defaults": render(),
        # What a production install sets: a pinned image, operator credentials offered to one
        # namespace, egress restricted, one watched namespace.
        "chart-production": render(
            {
                "image": {"repository": "registry.example.internal/ecs-vnc", "digest": PINNED},
                "credentials": {"existingSecret": "ecs-vnc-operator-credentials"},
                "operator": {"credentialsNamespaces": ["team-a"]},
                "watchNamespace": "team-a",
                "networkPolicy": {
                    "egress": [
                        {"ports": [{"port": 53, "protocol": p} for p in ("UDP", "TCP")]},
                        {"ports": [{"port": 443, "protocol": "TCP"}]},
                    ]
                },
            }
        ),
    }


@pytest.fixture(scope="module")
def findings(render, kubectl_path, tmp_path_factory, pytestconfig):
    """Target -> checkov's report on it; each target in a directory of its own, so that a graph
    check (e.g. "every pod has a NetworkPolicy") cannot be satisfied by another target."""
    try:
        import checkov  # noqa: F401
    except ImportError as e:
        pytest.fail(f"checkov is not importable ({e}); run: {FIX_PYTHON}", pytrace=False)
    targets = {name: yaml.safe_dump_all(docs) for name, docs in chart_targets(render).items()}
    targets["deploy"] = yaml.safe_dump_all(kustomize(kubectl_path, DEPLOY))
    namespaced = kustomize(kubectl_path, DEPLOY / "namespaced")
    targets["deploy-namespaced"] = yaml.safe_dump_all(namespaced)
    root = tmp_path_factory.mktemp("checkov")
    procs = {}
    started = time.monotonic()
    for name, text in targets.items():
        directory = root / name
        directory.mkdir()
        (directory / f"{name}.yaml").write_text(text)
        procs[name] = subprocess.Popen(
            [
                *(sys.executable, "-c", RUNNER),
                *("--framework", "kubernetes", "--directory", str(directory)),
                *("--output", "json", "--skip-download"),
            ],
            cwd=directory,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    reports = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        # 0: nothing failed, 1: something failed; anything else is checkov itself failing.
        assert proc.returncode in (0, 1), f"checkov on {name} exited {proc.returncode}:\n{err}"
        report = json.loads(out)
        assert isinstance(report, dict) and report["check_type"] == "kubernetes", out[:500]
        reports[name] = report
    elapsed = time.monotonic() - started
    # Shown in the test run's output (outside pytest's capture): the scanner's cost.
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        sys.stderr.write(f"\ncheckov: {len(targets)} scans, in parallel, took {elapsed:.1f} s\n")
    return reports


def failed(report) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]}


def passed(report) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for c in report["results"]["passed_checks"]}


def load_skips() -> dict[str, dict]:
    skips = yaml.safe_load(SKIPS.read_text())
    for check, entry in skips.items():
        assert set(entry) == {"name", "resources", "why"}, f"{SKIPS}: {check}: {sorted(entry)}"
        assert entry["why"].strip() and entry["resources"], f"{SKIPS}: {check}"
    return skips


def test_checkov_scanned_everything(findings):
    """A scan that parsed nothing would pass; each target's Deployment, RBAC and NetworkPolicy
    were read, and the graph check that every pod has a NetworkPolicy ran and passed."""
    for name, report in findings.items():
        assert report["summary"]["parsing_errors"] == 0, (name, report["results"]["parsing_errors"])
        resources = {r for _, r in passed(report) | failed(report)}
        # (checkov has no check of its own on NetworkPolicies: CKV2_K8S_6 below reads them.)
        for kind in ("Deployment", "ServiceAccount", "Service", "ClusterRole"):
            assert any(r.startswith(f"{kind}.") for r in resources), (name, kind, sorted(resources))
        assert any(c == "CKV2_K8S_6" for c, _ in passed(report)), name


def test_only_justified_findings(findings):
    skips = load_skips()
    allowed = {(check, r) for check, entry in skips.items() for r in entry["resources"]}
    unexpected = {
        f"{name}: {check} on {resource}"
        for name, report in findings.items()
        for check, resource in failed(report) - allowed
    }
    assert not unexpected, (
        "checkov findings that are neither fixed nor justified in "
        f"{SKIPS.name}:\n" + "\n".join(sorted(unexpected))
    )
    seen = set().union(*(failed(r) for r in findings.values()))
    stale = allowed - seen
    assert not stale, f"entries in {SKIPS.name} that match no finding any more: {sorted(stale)}"


def test_justifications_hold_where_claimed(findings):
    """The skips cover only what their justification names: a pinned image passes the digest
    check, and the chart without operator credentials passes the Secrets-as-env check."""
    deployment = "Deployment.ecs-vnc-system.ecs-vnc-operator"
    assert ("CKV_K8S_43", deployment) in passed(findings["chart-production"])
    assert ("CKV_K8S_43", deployment) in failed(findings["chart-defaults"])
    assert ("CKV_K8S_35", deployment) in passed(findings["chart-defaults"])
    assert ("CKV_K8S_35", deployment) in failed(findings["chart-production"])
