"""Fixtures: real Helm (helm-python-sdk, the Helm v4 SDK in-process), kubectl, and a real
kube-apiserver from scripts/local-cluster.sh. A missing dependency fails the test and names
the command that installs it; nothing is skipped."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from manifests import CHART, CRD, REPO, Doc, load_all

FIX_PYTHON = "scripts/venv.sh (it installs tests/requirements.txt into the venv)"
FIX_KUBECTL = "scripts/install-deps.sh"
FIX_CLUSTER = "scripts/local-cluster.sh build"
CACHE = Path(os.environ.get("ECSVNC_CACHE", Path.home() / ".cache" / "ecs-vnc-operator"))
K8S_BIN = CACHE / "k8s-1.20.2" / "bin"


@pytest.fixture(scope="session")
def helm():
    try:
        import helm_python
    except ImportError as e:
        pytest.fail(f"helm-python-sdk is not importable ({e}); run: {FIX_PYTHON}", pytrace=False)
    return helm_python


@pytest.fixture(scope="session")
def render(helm) -> Callable[..., list[Doc]]:
    """Renders the chart the way `helm install --dry-run=client` does; returns its objects."""

    def _render(
        values: dict[str, Any] | None = None,
        namespace: str = "ecs-vnc-system",
        release: str = "ecs-vnc-operator",
    ) -> list[Doc]:
        result = helm.Config().install(
            str(CHART), release, values or {}, namespace=namespace, dry_run="client"
        )
        return load_all(result["manifest"])

    return _render


def on_path(tool: str, fix: str) -> str:
    """Where `tool` is on PATH; fails the test with the command that installs it if it is not."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not on PATH; run: {fix}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def kubectl_path() -> str:
    return on_path("kubectl", FIX_KUBECTL)


@dataclass
class Cluster:
    dir: Path
    kubectl_path: str

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=str(self.dir / "kubeconfig"))
        proc = subprocess.run(
            [self.kubectl_path, *args],
            input=input,
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def install_crd(self) -> None:
        """crds/vncsession.yaml, created for real and Established. --validate=false: kubectl
        checks a manifest against the server's OpenAPI first, and Kubernetes before 1.23 does
        not know the CRD's CEL rules (x-kubernetes-validations), so kubectl refuses the file
        there; the 1.20 API server itself accepts it and drops the rules it cannot enforce (the
        operator checks them again)."""
        self.kubectl("apply", "--validate=false", "-f", str(CRD))
        self.crd_established("vncsessions.ecsvnc.dev")

    def install_prometheus_operator_crd(self, kind: str) -> None:
        """A stand-in for the Prometheus Operator's CRD of `kind` (ServiceMonitor, PrometheusRule),
        created for real and Established, so an object of that kind has a kind to be checked
        against (its schema is the Prometheus Operator's business, not ours)."""
        group = "monitoring.coreos.com"
        singular = kind.lower()
        plural = f"{singular}s"
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": singular,
                },
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                    }
                ],
            },
        }
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
        self.crd_established(f"{plural}.{group}")

    def crd_established(self, name: str) -> None:
        self.kubectl("wait", "--for=condition=Established", "--timeout=30s", f"crd/{name}")

    def client_certificate(self, user: str, into: Path) -> tuple[Path, Path]:
        """A client certificate and key for `user`, signed by the cluster's CA (which the API
        server trusts for clients): requests made with it are that user's own, no impersonation."""
        pki = self.dir / "pki"
        crt, key, csr = (into / f"{user}.{ext}" for ext in ("crt", "key", "csr"))

        def openssl(*args) -> None:
            subprocess.run(
                ["openssl", *map(str, args)], check=True, capture_output=True, timeout=60
            )

        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={user}",
                "-keyout", key, "-out", csr)  # fmt: skip
        # The serial file goes next to the certificate, not into the cluster's pki/.
        openssl("x509", "-req", "-in", csr, "-days", "1", "-CA", pki / "ca.crt",
                "-CAkey", pki / "ca.key", "-CAcreateserial", "-CAserial", into / "ca.srl",
                "-out", crt)  # fmt: skip
        return crt, key

    def request_as(
        self,
        certificate: tuple[Path, Path],
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict]:
        """One HTTPS request to the API server with a client certificate; (status, JSON body)."""
        kubeconfig = yaml.safe_load((self.dir / "kubeconfig").read_text())
        server = urllib.parse.urlsplit(kubeconfig["clusters"][0]["cluster"]["server"])
        context = ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.crt"))
        context.load_cert_chain(*map(str, certificate))
        conn = http.client.HTTPSConnection(
            server.hostname, server.port, context=context, timeout=30
        )
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, body=payload, headers={"Content-Type": content_type})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            conn.close()

    def ensure_namespace(self, name: str) -> None:
        """Created for real: a server-side dry-run cannot place objects in a dry-run namespace."""
        manifest = f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        self.kubectl("apply", "-f", "-", input=manifest)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to this one process (one a test started), then SIGKILL if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def cluster(kubectl_path) -> Iterator[Cluster]:
    """A private etcd + kube-apiserver (Kubernetes 1.20) on loopback for this session."""
    for binary in ("kube-apiserver", "etcd"):
        if not os.access(K8S_BIN / binary, os.X_OK):
            pytest.fail(f"{K8S_BIN / binary} is missing; run: {FIX_CLUSTER}", pytrace=False)
    # The watchdog stops the control plane if this process dies without running teardown.
    env = dict(os.environ, ECSVNC_OWNER_PID=str(os.getpid()))
    up = subprocess.run(
        [str(REPO / "scripts" / "local-cluster.sh"), "up"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    lines = up.stdout.strip().splitlines()
    if up.returncode != 0 or not lines:
        pytest.fail(
            f"scripts/local-cluster.sh up failed ({up.returncode}):\n{up.stderr}", pytrace=False
        )
    state = Path(lines[-1])
    try:
        yield Cluster(state, kubectl_path)
    finally:
        subprocess.run(
            [str(REPO / "scripts" / "local-cluster.sh"), "down", str(state)],
            check=False,
            capture_output=True,
            timeout=120,
        )
