"""Grants held in Git, deployed by real Helm 4 (helm-python-sdk) with its kstatus wait
(`wait="watcher"`, the library Flux uses too), against the real API server with the operator
and ecs-sim running (issue 14). The operator's conditions follow kstatus: `Ready` True while
the grant is in force and its last request was served (phases Ready, UrlExpired, Expired),
`UrlValid` True only in phase Ready, `Stalled` True when only a person can help (Failed and not
refreshable, or Closed), all with observedGeneration. So:

- an upgrade of a chart whose session rests in Expired returns in seconds (it used to wait for
  its whole timeout: Ready was False at rest, which kstatus reads as "still reconciling");
- an upgrade that makes the grant impossible (an instance ECS does not know: terminal
  InvalidInstanceId.NotFound) fails in seconds, naming the session, instead of timing out.

The operator runs with --url-validity 2s --session-keepalive 3s, so a session rests within
seconds. tests/deploy/charts/grant is the chart: one VncSession and its credentials Secret."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import stop
from manifests import REPO

GRANT = Path(__file__).with_name("charts") / "grant"
NS = "helm-grants"
UNKNOWN_INSTANCE = "i-bp1doesnotexist0000"
# The wait's own timeout, and how fast the outcome must be known: far apart, so that a wait
# that only ends at its timeout can never pass for a fast one.
WAIT_TIMEOUT = 90
FAST = 15
FIX_BUILD = "cargo build --release --bins"


def fresh_binaries() -> Path:
    """target/release or target/debug, whichever holds both binaries built after the last
    change to the sources (the newer if both do): a stale binary would test old code.
    ECSVNC_BIN_DIR names a directory to use as it is."""
    if chosen := os.environ.get("ECSVNC_BIN_DIR"):
        return Path(chosen)
    sources = [REPO / "Cargo.toml", REPO / "Cargo.lock", *(REPO / "src").rglob("*.rs")]
    newest_source = max(p.stat().st_mtime for p in sources if p.exists())
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    fresh = []
    for profile in ("release", "debug"):
        bins = [target / profile / name for name in ("ecs-vnc-operator", "ecs-sim")]
        if all(os.access(b, os.X_OK) for b in bins):
            built = min(b.stat().st_mtime for b in bins)
            if built >= newest_source:
                fresh.append((built, target / profile))
    if not fresh:
        pytest.fail(
            f"{target}/{{release,debug}}/ecs-vnc-operator and ecs-sim are missing or older than "
            f"src/; run: {FIX_BUILD}",
            pytrace=False,
        )
    return max(fresh)[1]


@dataclass
class Grants:
    cluster: object
    config: object
    operator_log: Path

    def session(self, name: str) -> dict:
        out = self.cluster.kubectl("-n", NS, "get", "vncsession", name, "-o", "json")
        return json.loads(out.stdout)

    def wait_for(self, name: str, what: str, ok: Callable[[dict], bool], timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            obj = self.session(name)
            if ok(obj):
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"VncSession {name}: not {what} after {timeout} s; status: "
                    f"{json.dumps(obj.get('status'), indent=1)}\noperator log (end):\n"
                    + self.operator_log.read_text()[-3000:]
                )
            time.sleep(0.2)

    def install(self, release: str, values: dict) -> float:
        started = time.monotonic()
        self.config.install(
            str(GRANT), release, values, namespace=NS, wait="watcher", timeout=WAIT_TIMEOUT
        )
        return time.monotonic() - started

    def upgrade(self, release: str, values: dict) -> float:
        started = time.monotonic()
        self.config.upgrade(
            str(GRANT), release, values, namespace=NS, wait="watcher", timeout=WAIT_TIMEOUT
        )
        return time.monotonic() - started


@pytest.fixture(scope="module")
def grants(cluster, helm, tmp_path_factory) -> Iterator[Grants]:
    """The CRD, a namespace, ecs-sim and the operator watching that namespace, all on loopback."""
    bins = fresh_binaries()
    cluster.install_crd()
    cluster.ensure_namespace(NS)
    work = tmp_path_factory.mktemp("helm-wait")
    kubeconfig = cluster.dir / "kubeconfig"
    procs: list[subprocess.Popen] = []
    config = None
    try:
        with open(work / "ecs-sim.log", "w") as sim_log:
            sim = subprocess.Popen(
                [str(bins / "ecs-sim"), "--listen", "127.0.0.1:0"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=sim_log,
                text=True,
            )
        procs.append(sim)
        ready, _, _ = select.select([sim.stdout], [], [], 15)
        line = sim.stdout.readline() if ready else ""
        prefix = "ecs-sim listening on "
        assert line.startswith(prefix), f"ecs-sim: {line!r}\n{(work / 'ecs-sim.log').read_text()}"
        endpoint = line[len(prefix):].strip()

        env = {k: v for k, v in os.environ.items() if not k.startswith("ALIBABA_CLOUD_")}
        env.update(KUBECONFIG=str(kubeconfig), POD_NAMESPACE=NS, RUST_LOG="info")
        operator_log = work / "operator.log"
        with open(operator_log, "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        str(bins / "ecs-vnc-operator"),
                        "run",
                        "--watch-namespace", NS,
                        "--ecs-endpoint", endpoint,
                        "--metrics-addr", "127.0.0.1:0",
                        "--health-addr", "127.0.0.1:0",
                        "--url-validity", "2s",
                        "--session-keepalive", "3s",
                        "--log-format", "text",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    env=env,
                )
            )
        config = helm.Config(kubeconfig_path=str(kubeconfig), namespace=NS)
        yield Grants(cluster, config, operator_log)
    finally:
        if config is not None:
            for release in ("at-rest", "impossible"):
                try:
                    config.uninstall(release, ignore_not_found=True)
                except helm.HelmError:
                    pass
            config.close()
        for proc in reversed(procs):
            stop(proc)
            if proc.stdout:
                proc.stdout.close()
        cluster.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def conditions(obj: dict) -> dict[str, dict]:
    found = {c["type"]: c for c in obj.get("status", {}).get("conditions") or []}
    generation = obj["metadata"]["generation"]
    for c in found.values():
        assert c.get("observedGeneration") == generation, (c, generation)
    return found


def status_of(conds: dict[str, dict], kind: str) -> str | None:
    return conds.get(kind, {}).get("status")


def phase_is(*phases: str) -> Callable[[dict], bool]:
    def ok(obj: dict) -> bool:
        st = obj.get("status") or {}
        return (
            st.get("phase") in phases
            and st.get("observedGeneration") == obj["metadata"]["generation"]
        )

    return ok


def values(name: str, instance: str | None = None) -> dict:
    session = {"name": name}
    if instance:
        session["instanceId"] = instance
    return {"session": session}


def test_upgrade_with_the_grant_at_rest_returns_in_seconds(grants):
    grants.install("at-rest", values("web-1"))
    grants.wait_for("web-1", "Ready", phase_is("Ready", "UrlExpired", "Expired"), 30)
    # 2 s URL window + 3 s keepalive: at rest in Expired, where nothing happens until asked.
    rest = grants.wait_for("web-1", "Expired", phase_is("Expired"), 30)
    conds = conditions(rest)
    assert status_of(conds, "Ready") == "True", conds
    assert status_of(conds, "UrlValid") == "False", conds
    assert status_of(conds, "Stalled") != "True", conds
    assert rest["status"]["refreshable"] is True

    took = grants.upgrade("at-rest", values("web-1"))
    assert took < FAST, f"upgrade --wait took {took:.1f} s with the grant at rest"
    # Current as it rests: no URL was issued to satisfy the wait.
    after = grants.session("web-1")
    assert after["status"]["phase"] == "Expired"
    assert after["status"]["issuedAt"] == rest["status"]["issuedAt"]
    assert after["status"].get("refreshCount") == rest["status"].get("refreshCount")


def test_upgrade_to_an_impossible_grant_fails_in_seconds_naming_it(grants, helm):
    grants.install("impossible", values("web-2"))
    grants.wait_for("web-2", "Ready", phase_is("Ready", "UrlExpired", "Expired"), 30)

    started = time.monotonic()
    with pytest.raises(helm.HelmError) as failure:
        grants.upgrade("impossible", values("web-2", UNKNOWN_INSTANCE))
    took = time.monotonic() - started
    assert took < FAST, f"the failing upgrade took {took:.1f} s (its wait ends at {WAIT_TIMEOUT} s)"
    # Helm names the session, its kstatus (Failed, from Stalled) and the operator's message.
    message = str(failure.value)
    assert f"VncSession/{NS}/web-2" in message, message
    assert "status: Failed" in message and "InvalidInstanceId.NotFound" in message, message

    failed = grants.session("web-2")
    assert phase_is("Failed")(failed), failed.get("status")
    assert failed["status"]["lastError"]["code"] == "InvalidInstanceId.NotFound"
    assert failed["status"]["refreshable"] is False
    conds = conditions(failed)
    assert status_of(conds, "Stalled") == "True", conds
    assert status_of(conds, "Ready") == "False", conds
    assert status_of(conds, "UrlValid") == "False", conds
