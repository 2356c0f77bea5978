"""
The Helm chart (deploy/helm/stomp-gateway), checked offline.

``helm lint`` and ``helm template`` (Helm built from the Go module proxy by
scripts/helm-local, cached outside the clone) render the chart with the three
values a user must set and with every option turned on; each rendered manifest
is validated against the Kubernetes API's schemas (kubernetes-validate, strict:
no unknown fields) and then checked for what operating the gateway needs.
No cluster runs here: scheduling, probes and scaling themselves are not exercised.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import OPTIONS, env_name
from tests.ops.podman import ROOT

pytestmark = pytest.mark.timeout(1800)  # a cold Helm build takes minutes

CHART = ROOT / "deploy" / "helm" / "stomp-gateway"
HELM_LOCAL = ROOT / "scripts" / "helm-local"
# The oldest API version the chart declares (Chart.yaml kubeVersion) and the newest known.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
REQUIRED = {
    "kafka.bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092",
    "mongodb.uri": "mongodb://chat:hunter2@mongo:27017/chat",
    "auth.jwtSecret": "a-jwt-secret",
}
EVERY_OPTION: dict[str, Any] = {
    "replicaCount": 3,
    "image": {"repository": "registry.example.com/stomp-gateway", "tag": "1.2.3"},
    "kafka": {"bootstrap": "kafka:9092", "topic": "rooms", "partitions": 12},
    "mongodb": {"uri": "mongodb://mongo:27017/chat"},
    "auth": {
        "jwtPublicKey": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
        "serviceToken": "a-service-token",
        "allowedOrigins": ["https://chat.example.com", "https://app.example.com"],
    },
    "config": {"STOMP_GATEWAY_LOG_LEVEL": "debug", "STOMP_GATEWAY_HISTORY_SIZE": "500"},
    "port": 9000,
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "tls": [{"secretName": "chat-tls", "hosts": ["chat.example.com"]}],
    },
    "autoscaling": {"connections": {"enabled": True, "averageValue": "2000"}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "chat", "operator": "Exists", "effect": "NoSchedule"}],
}
NO_SHARED_SECRET = {"auth.jwtSecret": ""}  # with EVERY_OPTION's public key
OPTION_VARIABLES = {env_name(option) for option in OPTIONS}

Manifests = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def helm() -> str:
    result = subprocess.run(
        [str(HELM_LOCAL), "build"], capture_output=True, text=True, timeout=1700, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run_helm(
    helm: str,
    command: str,
    tmp_path: Path,
    values: dict[str, Any] | None = None,
    sets: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``helm <command> [release] CHART`` with the required values, ``values`` and ``sets``."""
    release = ["chat"] if command == "template" else []
    arguments = [helm, *command.split(), *release, str(CHART)]
    sets = sets or {}
    for name, value in REQUIRED.items():
        arguments += ["--set-literal", f"{name}={sets.get(name, value)}"]
    for name, value in sets.items():
        if name not in REQUIRED:
            arguments += ["--set", f"{name}={value}"]
    if values is not None:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        arguments += ["--values", str(path)]
    return subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)


def render(
    helm: str,
    tmp_path: Path,
    values: dict[str, Any] | None = None,
    sets: dict[str, str] | None = None,
) -> Manifests:
    """The rendered manifests by kind, each validated against the Kubernetes API schemas."""
    result = run_helm(helm, "template", tmp_path, values, sets)
    assert result.returncode == 0, result.stderr
    manifests: Manifests = {}
    for manifest in yaml.safe_load_all(result.stdout):
        if manifest is None:
            continue
        assert manifest["kind"] not in manifests, f"two {manifest['kind']}s"
        manifests[manifest["kind"]] = manifest
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD of the Prometheus Operator: no schema in the API's
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)
    return manifests


def render_every_option(helm: str, tmp_path: Path) -> Manifests:
    """Every option on; the JWT key is a public key, so no shared secret."""
    return render(helm, tmp_path, EVERY_OPTION, NO_SHARED_SECRET)


def container(manifests: Manifests) -> dict[str, Any]:
    (only,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def environment(manifests: Manifests) -> dict[str, Any]:
    """Every variable the gateway gets: the ConfigMap's, and those set on the container."""
    variables: dict[str, Any] = dict(manifests["ConfigMap"]["data"])
    for variable in container(manifests)["env"]:
        variables[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    return variables


def test_helm_lint_passes_strictly(helm: str, tmp_path: Path) -> None:
    result = run_helm(helm, "lint --strict", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_helm(helm, "lint --strict", tmp_path, EVERY_OPTION, NO_SHARED_SECRET)
    assert result.returncode == 0, result.stdout + result.stderr


def test_defaults_render_valid_manifests_of_every_kind(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path)
    expected = {"ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget"}
    assert set(manifests) == expected | {"HorizontalPodAutoscaler"}


def test_every_option_renders_valid_manifests(helm: str, tmp_path: Path) -> None:
    manifests = render_every_option(helm, tmp_path)
    assert set(manifests) >= {"Ingress", "ServiceMonitor", "HorizontalPodAutoscaler"}
    gateway = container(manifests)
    assert gateway["image"] == "registry.example.com/stomp-gateway:1.2.3"
    assert gateway["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    variables = environment(manifests)
    assert variables["STOMP_GATEWAY_PORT"] == "9000"
    assert variables["STOMP_GATEWAY_JWT_PUBLIC_KEY"] == "/etc/stomp-gateway/jwt/jwt-public-key.pem"
    assert "STOMP_GATEWAY_JWT_SECRET" not in variables
    assert variables["STOMP_GATEWAY_ALLOWED_ORIGIN"] == (
        "https://chat.example.com,https://app.example.com"
    )
    mounts = {mount["mountPath"]: mount for mount in gateway["volumeMounts"]}
    assert mounts["/etc/stomp-gateway/jwt"]["readOnly"] is True
    [connections] = [
        metric for metric in manifests["HorizontalPodAutoscaler"]["spec"]["metrics"]
        if metric["type"] == "Pods"
    ]  # fmt: skip
    assert connections["pods"]["metric"]["name"] == "stomp_gateway_connections"


def test_the_three_required_values_are_asked_for_by_name(helm: str, tmp_path: Path) -> None:
    for name in REQUIRED:
        result = run_helm(helm, "template", tmp_path, sets={name: ""})
        assert result.returncode != 0
        assert name.split(".")[-1] in result.stderr, result.stderr


def test_an_existing_secret_replaces_the_charts(helm: str, tmp_path: Path) -> None:
    values = {"auth": {"existingSecret": "chat-credentials"}}
    manifests = render(helm, tmp_path, values, {"mongodb.uri": "", "auth.jwtSecret": ""})
    assert "Secret" not in manifests
    references = [
        variable["valueFrom"]["secretKeyRef"]["name"]
        for variable in container(manifests)["env"]
        if "valueFrom" in variable
    ]
    assert set(references) == {"chat-credentials"}


def test_pods_run_as_10001_read_only_without_capabilities(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    security = container(manifests)["securityContext"]
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container(manifests)["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}


def test_two_replicas_at_least_and_one_disruption_at_a_time(helm: str, tmp_path: Path) -> None:
    manifests = render(helm, tmp_path)
    assert manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert manifests["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
    fixed = render(helm, tmp_path, {"autoscaling": {"enabled": False}})
    assert fixed["Deployment"]["spec"]["replicas"] == 2
    sets = {"replicaCount": "1", "autoscaling.enabled": "false"}
    result = run_helm(helm, "template", tmp_path, sets=sets)
    assert result.returncode != 0
    assert "replicaCount must be at least 2" in result.stderr


def test_probes_ask_readyz_and_healthz_on_the_gateways_port(helm: str, tmp_path: Path) -> None:
    gateway = container(render(helm, tmp_path))
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = render(helm, tmp_path)["Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_termination_outlasts_the_pre_stop_pause_the_drain_and_the_shutdown(
    helm: str, tmp_path: Path
) -> None:
    manifests = render(helm, tmp_path)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    variables = environment(manifests)
    pause = int(container(manifests)["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(variables["STOMP_GATEWAY_DRAIN_PERIOD"])
    shutdown = float(variables["STOMP_GATEWAY_SHUTDOWN_TIMEOUT"])
    assert pause > 0
    assert pod["terminationGracePeriodSeconds"] > pause + drain + shutdown


def test_settings_are_gateway_options_and_secrets_stay_in_the_secret(
    helm: str, tmp_path: Path
) -> None:
    manifests = render(helm, tmp_path)
    settings = manifests["ConfigMap"]["data"]
    assert set(settings) <= OPTION_VARIABLES
    assert settings["STOMP_GATEWAY_KAFKA_BOOTSTRAP"] == REQUIRED["kafka.bootstrap"]
    secret_values = set(manifests["Secret"]["stringData"].values()) - {""}
    assert secret_values == {REQUIRED["mongodb.uri"], REQUIRED["auth.jwtSecret"]}
    assert not secret_values & set(settings.values())
    from_secret = {
        variable["name"]
        for variable in container(manifests)["env"]
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    expected = {
        "STOMP_GATEWAY_MONGO_URI",
        "STOMP_GATEWAY_JWT_SECRET",
        "STOMP_GATEWAY_SERVICE_TOKEN",
    }
    assert from_secret == expected
    result = run_helm(helm, "template", tmp_path, {"config": {"LOG_LEVEL": "debug"}})
    assert result.returncode != 0
    assert "only STOMP_GATEWAY_* settings" in result.stderr


def test_the_ingress_outlasts_heart_beats_and_the_monitor_scrapes_each_pod(
    helm: str, tmp_path: Path
) -> None:
    manifests = render_every_option(helm, tmp_path)
    annotations = manifests["Ingress"]["metadata"]["annotations"]
    heart_beat = 10 * 3  # the default interval (s) times the tolerance
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) > heart_beat
    [rule] = manifests["Ingress"]["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": manifests["Service"]["metadata"]["name"], "port": {"name": "http"}}
    monitor = manifests["ServiceMonitor"]["spec"]
    service_labels = manifests["Service"]["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= service_labels.items()
    assert monitor["endpoints"][0]["port"] == "http"
    assert monitor["endpoints"][0]["path"] == "/metrics"
