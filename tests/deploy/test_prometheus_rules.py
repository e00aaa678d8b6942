"""The operator's alerts: charts/ecs-vnc-operator/files/prometheus-rules.yaml, their one source,
checked and unit-tested by promtool (Debian's `prometheus` package), every alert with a case
where it fires and one where it does not; the README's alert table and metrics are the file's;
and the chart's PrometheusRule (off by default) is that file, scoped to the release."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from conftest import FIX_KUBECTL, on_path
from manifests import CHART, REPO, of_kind, one

RULES = CHART / "files" / "prometheus-rules.yaml"
RULES_TEST = REPO / "tests" / "deploy" / "prometheus" / "rules_test.yaml"
# The job the source's matchers name; the chart replaces them with its release's.
SOURCE_JOB = 'job="ecs-vnc-operator"'
FIX_PROMTOOL = f"{FIX_KUBECTL} (it installs Debian's prometheus package, which has promtool)"


@pytest.fixture(scope="session")
def promtool() -> str:
    return on_path("promtool", FIX_PROMTOOL)


def run_promtool(promtool: str, *args: str) -> str:
    proc = subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{out}"
    return out


def source() -> dict:
    return yaml.safe_load(RULES.read_text())


def rules() -> list[dict]:
    return [rule for group in source()["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def readme_section(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def readme_table(section: str, first: str) -> list[list[str]]:
    lines = [line.strip() for line in section.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def only_code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"not one code span: {cell!r}"
    return match.group(1)


# --- promtool ------------------------------------------------------------------------------------


def test_the_rules_pass_promtool_check(promtool):
    out = run_promtool(promtool, "check", "rules", str(RULES))
    assert f"SUCCESS: {len(rules())} rules found" in out, out


def test_every_alert_passes_its_promtool_tests(promtool):
    out = run_promtool(promtool, "test", "rules", str(RULES_TEST))
    assert "SUCCESS" in out, out


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not():
    spec = yaml.safe_load(RULES_TEST.read_text())
    tested = [(RULES_TEST.parent / f).resolve() for f in spec["rule_files"]]
    assert tested == [RULES.resolve()], "the promtool tests test the one source"
    fires, quiet = set(), set()
    for test in spec["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = set(alerts())
    assert len(names) >= 8, names
    assert names - fires == set(), "alerts without a case where they fire"
    assert names - quiet == set(), "alerts without a case where they do not fire"
    assert (fires | quiet) - names == set(), "cases of alerts the rules do not have"


def test_every_rule_is_scoped_to_the_operators_job():
    """The chart scopes the rules to its release by replacing this one matcher: a selector
    without it would see every job's series."""
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        selectors = re.findall(r"\b(ecsvnc[_:][a-z0-9_:]+|up)\s*\{([^}]*)\}", rule["expr"])
        assert selectors, f"{name}: no selector"
        for metric, matchers in selectors:
            assert SOURCE_JOB in matchers, f"{name}: {metric}{{{matchers}}} lacks {SOURCE_JOB}"


# --- The README --------------------------------------------------------------------------------


def test_the_readme_lists_the_alerts_of_the_source():
    section = readme_section("## Operating it")
    assert f"`{RULES.relative_to(REPO)}`" in section, "the README names the one source"
    assert f"`{RULES_TEST.relative_to(REPO)}`" in section
    documented = {only_code(row[0]): row[1] for row in readme_table(section, "alert")}
    served = {name: rule["labels"]["severity"] for name, rule in alerts().items()}
    assert documented == served, "the README's alert table (left) vs the rule file (right)"


def test_the_rules_use_only_metrics_the_readme_lists():
    """The README's metrics table is checked against a fresh operator's /metrics by
    tests/readme.rs; a rule over a metric not in it would never see a sample."""
    listed = {only_code(row[0]) for row in readme_table(readme_section("## Operating it"), "metric")}
    histogram_series = {f"{name}_{s}" for name in listed for s in ("bucket", "sum", "count")}
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for rule in rules():
        for metric in re.findall(r"\b(ecsvnc[_:][a-z0-9_:]+)\s*\{", rule["expr"]):
            assert metric in listed | histogram_series | recorded, (
                f"{rule.get('alert') or rule['record']} uses {metric}, not in the README's table"
            )


# --- The chart's PrometheusRule -------------------------------------------------------------------


def test_prometheus_rule_is_off_by_default(render):
    assert not of_kind(render(), "PrometheusRule")
    assert not of_kind(render({"serviceMonitor": {"enabled": True}}), "PrometheusRule")


def test_prometheus_rule_is_the_source_scoped_to_the_release(render, promtool, tmp_path):
    docs = render(
        {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        },
        namespace="ops",
        release="vnc",
    )
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "vnc-ecs-vnc-operator"
    assert rule["metadata"]["namespace"] == "ops"
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "vnc"
    # The ServiceMonitor's job is the Service's name (the Prometheus Operator's default).
    service = one(docs, "Service")
    monitor = one(docs, "ServiceMonitor")
    assert "jobLabel" not in monitor["spec"]
    job = service["metadata"]["name"]
    assert job == "vnc-ecs-vnc-operator-metrics"
    scoped = RULES.read_text().replace(SOURCE_JOB, f'job="{job}",namespace="ops"')
    assert rule["spec"] == {"groups": yaml.safe_load(scoped)["groups"]}
    assert SOURCE_JOB not in yaml.safe_dump(rule)
    # What the Prometheus Operator hands Prometheus is a valid rule file.
    rendered = tmp_path / "rendered-rules.yaml"
    rendered.write_text(yaml.safe_dump(rule["spec"]))
    run_promtool(promtool, "check", "rules", str(rendered))


def test_prometheus_rule_follows_the_full_name(render):
    docs = render({"prometheusRule": {"enabled": True}, "fullnameOverride": "vnc-ops"})
    rule = one(docs, "PrometheusRule")
    assert rule["metadata"]["name"] == "vnc-ops"
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert all('job="vnc-ops-metrics",namespace="ecs-vnc-system"' in e for e in exprs), exprs
    assert one(docs, "Service")["metadata"]["name"] == "vnc-ops-metrics"


def test_the_chart_lints_clean_with_both_monitoring_objects(helm):
    values = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    report = helm.lint(str(CHART), values, strict=True)
    findings = {(m["severity"], m["path"], m["error"]) for m in report["messages"]}
    assert report["errors"] == [] and findings <= {(1, "Chart.yaml", "icon is recommended")}, report


@pytest.mark.parametrize(
    "values, where",
    [
        ({"prometheusRule": {"enabled": "true"}}, "/prometheusRule/enabled"),
        ({"prometheusRule": {"labels": {"release": 1}}}, "/prometheusRule/labels/release"),
        ({"prometheusRule": {"rules": []}}, "rules"),
    ],
    ids=["enabled-string", "label-number", "unknown-key"],
)
def test_the_schema_rejects_bad_prometheus_rule_values(helm, values, where):
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(err.value), str(err.value)


def test_the_prometheus_rule_is_accepted_by_the_api_server(cluster, render):
    cluster.install_prometheus_operator_crd("PrometheusRule")
    docs = of_kind(
        render({"prometheusRule": {"enabled": True}}, namespace="ecs-vnc-rules", release="vnc"),
        "PrometheusRule",
    )
    cluster.ensure_namespace("ecs-vnc-rules")
    out = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs)
    ).stdout
    assert out.count("(server dry run)") == 1, out
