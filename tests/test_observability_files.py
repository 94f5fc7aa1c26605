"""The collector config and the local trace stack (examples/observability), checked without Docker.

Neither the collector nor Compose runs here, so these tests read the YAML and check what would make
the stack fail to start or silently drop traces: receivers bound to localhost, a pipeline naming a
component that is not defined, an exporter pointing at a service that does not exist, clashing OTLP
ports, a mount whose source is not there, an unpinned image, a gateway config that no longer loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from relaygate.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR_CONFIG = ROOT / "otel-collector.yaml"
STACK = ROOT / "examples" / "observability"
COMPOSE_FILE = STACK / "compose.yaml"
TEMPO_CONFIG = STACK / "tempo.yaml"
GATEWAY_CONFIG = STACK / "relaygate.yaml"
README = STACK / "README.md"

# Where otel/opentelemetry-collector-contrib reads its config when no --config is given.
COLLECTOR_DEFAULT_CONFIG = "/etc/otelcol-contrib/config.yaml"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
# `otlp` is the deprecated alias of `otlp_grpc` (collector v0.144.0); both send OTLP over gRPC.
OTLP_GRPC_EXPORTER_TYPES = {"otlp", "otlp_grpc"}
PIPELINE_KINDS = ("receivers", "processors", "exporters")


def _mapping(value: object, where: str) -> dict[str, Any]:
    assert isinstance(value, dict), f"{where}: expected a mapping, got {type(value).__name__}"
    return value


def _load(path: Path) -> dict[str, Any]:
    return _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path.relative_to(ROOT)))


@pytest.fixture(scope="module")
def collector() -> dict[str, Any]:
    return _load(COLLECTOR_CONFIG)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: _mapping(service, f"services.{name}")
        for name, service in _mapping(compose["services"], "services").items()
    }


def _pipelines(collector: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pipelines = _mapping(_mapping(collector["service"], "service")["pipelines"], "service.pipelines")
    return {name: _mapping(pipeline, f"pipeline {name}") for name, pipeline in pipelines.items()}


def _component_type(name: str) -> str:
    """``otlp/jaeger`` -> ``otlp``: a component id is ``type[/name]``."""
    return name.split("/", 1)[0]


def _host_port(endpoint: str) -> tuple[str, int]:
    """``jaeger:4317`` or ``http://jaeger:4317`` -> (``jaeger``, 4317)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parts.hostname is not None and parts.port is not None, f"no host:port in {endpoint!r}"
    return parts.hostname, parts.port


# --- otel-collector.yaml ------------------------------------------------------------------------


def test_collector_receives_otlp_on_all_interfaces(collector: dict[str, Any]) -> None:
    protocols = _mapping(collector["receivers"]["otlp"]["protocols"], "receivers.otlp.protocols")
    # The default is localhost:43xx, which neither the host nor other containers can reach.
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{OTLP_GRPC_PORT}"
    assert protocols["http"]["endpoint"] == f"0.0.0.0:{OTLP_HTTP_PORT}"


def test_every_pipeline_starts_with_memory_limiter_then_batch(collector: dict[str, Any]) -> None:
    pipelines = _pipelines(collector)
    assert {"traces", "metrics"} <= pipelines.keys()
    for name, pipeline in pipelines.items():
        processors = list(pipeline.get("processors", []))
        assert processors[:1] == ["memory_limiter"], f"{name}: memory_limiter must come first, got {processors}"
        assert "batch" in processors, f"{name}: no batch processor"


def _traces_exporter_to(collector: dict[str, Any], service: str) -> str:
    """The traces pipeline's exporter that sends to ``service`` (``otlp/jaeger`` for ``jaeger``)."""
    exporters = _mapping(collector["exporters"], "exporters")
    names: list[str] = [
        name
        for name in _pipelines(collector)["traces"]["exporters"]
        if "endpoint" in (exporters[name] or {}) and _host_port(exporters[name]["endpoint"])[0] == service
    ]
    assert len(names) == 1, f"the traces pipeline should send to {service} once, found {names}"
    return names[0]


def test_traces_go_to_jaeger_tempo_and_debug(collector: dict[str, Any]) -> None:
    traces = _pipelines(collector)["traces"]
    assert traces["receivers"] == ["otlp"]
    assert _traces_exporter_to(collector, "jaeger") == "otlp/jaeger"
    assert _traces_exporter_to(collector, "tempo") == "otlp/tempo"
    assert "debug" in traces["exporters"]
    # The gateway's gen_ai.client.* metrics have no backend in the stack; the debug exporter shows them.
    metrics = _pipelines(collector)["metrics"]
    assert metrics["receivers"] == ["otlp"]
    assert "debug" in metrics["exporters"]


def test_pipelines_name_only_defined_components(collector: dict[str, Any]) -> None:
    connectors = _mapping(collector.get("connectors") or {}, "connectors").keys()
    used: dict[str, set[str]] = {kind: set() for kind in PIPELINE_KINDS}
    for name, pipeline in _pipelines(collector).items():
        for kind in PIPELINE_KINDS:
            names = pipeline.get(kind, [])
            assert len(names) == len(set(names)), f"{name}.{kind} lists a component twice: {names}"
            defined = set(_mapping(collector.get(kind) or {}, kind))
            if kind != "processors":
                defined |= connectors  # a connector is an exporter of one pipeline and a receiver of another
            missing = set(names) - defined
            assert not missing, f"pipeline {name} names undefined {kind}: {sorted(missing)}"
            used[kind].update(names)
    for kind in PIPELINE_KINDS:
        unused = _mapping(collector.get(kind) or {}, kind).keys() - used[kind]
        assert not unused, f"{kind} defined but in no pipeline (a typo?): {sorted(unused)}"


@pytest.mark.parametrize("service", ["jaeger", "tempo"])
def test_backend_exporters_send_plain_otlp_grpc(collector: dict[str, Any], service: str) -> None:
    exporter = _traces_exporter_to(collector, service)
    config = _mapping(collector["exporters"][exporter], f"exporters.{exporter}")
    assert _component_type(exporter) in OTLP_GRPC_EXPORTER_TYPES
    assert _host_port(config["endpoint"]) == (service, OTLP_GRPC_PORT)
    assert config["tls"]["insecure"] is True  # the backends listen without TLS inside the compose network


def test_exporter_endpoints_name_compose_services(
    collector: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    endpoints = {
        name: config["endpoint"]
        for name, config in _mapping(collector["exporters"], "exporters").items()
        if isinstance(config, dict) and "endpoint" in config
    }
    assert endpoints, "no exporter with an endpoint"
    for name, endpoint in endpoints.items():
        host, _ = _host_port(endpoint)
        assert host in services, f"exporter {name} sends to {host!r}, which is not a service in compose.yaml"


# --- examples/observability/compose.yaml --------------------------------------------------------


@dataclass(frozen=True)
class Published:
    host_ip: str
    host_port: int | None  # None: Docker picks a free host port
    container_port: int


def _published(service: dict[str, Any]) -> list[Published]:
    result = []
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            published = spec.get("published")
            result.append(
                Published(spec.get("host_ip", "0.0.0.0"), int(published) if published else None, int(spec["target"]))
            )
            continue
        parts = str(spec).split("/", 1)[0].split(":")
        container = int(parts[-1])
        if len(parts) == 1:
            result.append(Published("0.0.0.0", None, container))
        elif len(parts) == 2:
            result.append(Published("0.0.0.0", int(parts[0]), container))
        else:
            result.append(Published(":".join(parts[:-2]), int(parts[-2]), container))
    return result


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    bind: bool


def _mounts(service: dict[str, Any]) -> list[Mount]:
    result = []
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):
            result.append(Mount(str(spec.get("source", "")), str(spec["target"]), spec.get("type") == "bind"))
            continue
        source, target = str(spec).split(":")[:2]
        result.append(Mount(source, target, source.startswith((".", "/", "~"))))
    return result


def _mount_source(service: dict[str, Any], target: str) -> Path:
    """The host path mounted at ``target``; Compose resolves relative paths from the compose file's directory."""
    for mount in _mounts(service):
        if mount.target == target:
            assert mount.bind, f"{target} is not a bind mount"
            return (COMPOSE_FILE.parent / mount.source).resolve()
    raise AssertionError(f"nothing is mounted at {target}")


def test_stack_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"collector", "jaeger", "tempo", "grafana"} <= services.keys()
    assert "relaygate" not in services  # the gateway runs on the host


def test_only_the_collector_publishes_otlp(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        published = _published(service)
        if name == "collector":
            assert {(port.host_port, port.container_port) for port in published} >= {
                (OTLP_GRPC_PORT, OTLP_GRPC_PORT),
                (OTLP_HTTP_PORT, OTLP_HTTP_PORT),
            }
            continue
        # Jaeger and Tempo listen on 4317/4318 too; publishing them would clash with the collector.
        clashing = [port for port in published if port.host_port in (OTLP_GRPC_PORT, OTLP_HTTP_PORT)]
        assert not clashing, f"{name} publishes OTLP port(s) on the host: {clashing}"


@pytest.mark.parametrize("name, port", [("jaeger", 16686), ("tempo", 3200), ("grafana", 3000)])
def test_uis_are_published(services: dict[str, dict[str, Any]], name: str, port: int) -> None:
    assert Published("127.0.0.1", port, port) in _published(services[name])


def test_ports_are_local_only(services: dict[str, dict[str, Any]]) -> None:
    # Grafana runs with an anonymous admin and the collector accepts anything: not for the network.
    for name, service in services.items():
        for port in _published(service):
            assert port.host_ip == "127.0.0.1", f"{name} publishes {port} beyond localhost"


def test_collector_mounts_the_repository_config(services: dict[str, dict[str, Any]]) -> None:
    collector = services["collector"]
    command = collector.get("command") or []
    configs = [arg.split("=", 1)[1] for arg in command if isinstance(arg, str) and arg.startswith("--config=")]
    target = configs[0] if configs else COLLECTOR_DEFAULT_CONFIG
    assert _mount_source(collector, target) == COLLECTOR_CONFIG


def test_bind_mounts_exist(services: dict[str, dict[str, Any]], compose: dict[str, Any]) -> None:
    named = set(_mapping(compose.get("volumes") or {}, "volumes"))
    for name, service in services.items():
        for mount in _mounts(service):
            if mount.bind:
                assert (COMPOSE_FILE.parent / mount.source).exists(), f"{name}: {mount.source} does not exist"
            else:
                assert mount.source in named, f"{name}: volume {mount.source!r} is not declared"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = str(service["image"])
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and tag[:1].isdigit(), f"{name}: image {image!r} is not pinned to a version"


def test_tempo_runs_monolithic_with_the_example_config(services: dict[str, dict[str, Any]]) -> None:
    tempo = services["tempo"]
    command = tempo["command"]
    args = command.split() if isinstance(command, str) else list(command)
    assert "-target=all" in args
    assert "-config.file=/etc/tempo.yaml" in args
    assert _mount_source(tempo, "/etc/tempo.yaml") == TEMPO_CONFIG


def test_grafana_is_anonymous_admin(services: dict[str, dict[str, Any]]) -> None:
    environment = services["grafana"]["environment"]
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Admin"


# --- Tempo and Grafana --------------------------------------------------------------------------


def test_tempo_config() -> None:
    tempo = _load(TEMPO_CONFIG)
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{OTLP_GRPC_PORT}"  # the collector's otlp/tempo
    assert tempo["server"]["http_listen_port"] == 3200
    assert tempo["storage"]["trace"]["backend"] == "local"


def _datasources(services: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    provisioning = _mount_source(services["grafana"], "/etc/grafana/provisioning/datasources")
    files = sorted(provisioning.glob("*.yaml")) + sorted(provisioning.glob("*.yml"))
    assert files, f"no datasource file in {provisioning}"
    found = []
    for path in files:
        document = _load(path)
        assert document["apiVersion"] == 1
        found += [_mapping(source, str(path)) for source in document["datasources"]]
    return found


def test_grafana_datasource_points_at_tempo(services: dict[str, dict[str, Any]]) -> None:
    tempo = [source for source in _datasources(services) if source["type"] == "tempo"]
    assert len(tempo) == 1
    assert tempo[0]["url"] == "http://tempo:3200"
    assert tempo[0].get("isDefault") is True


def test_grafana_datasources_name_compose_services(services: dict[str, dict[str, Any]]) -> None:
    for source in _datasources(services):
        host, _ = _host_port(source["url"])
        assert host in services, f"datasource {source['name']} queries {host!r}, not a service in compose.yaml"


# --- the gateway's side -------------------------------------------------------------------------


def test_gateway_example_config_exports_to_the_collector(services: dict[str, dict[str, Any]]) -> None:
    settings = load_settings(GATEWAY_CONFIG, environ={})
    telemetry = settings.telemetry
    assert telemetry.enabled
    assert telemetry.protocol == "http/protobuf"
    assert telemetry.service_name == "relaygate"
    assert telemetry.capture_content is False  # content stays opt-in
    assert telemetry.endpoint is not None
    host, port = _host_port(telemetry.endpoint)
    assert host == "127.0.0.1"
    assert Published("127.0.0.1", port, OTLP_HTTP_PORT) in _published(services["collector"])


def test_readme_matches_the_stack(services: dict[str, dict[str, Any]]) -> None:
    readme = README.read_text(encoding="utf-8")
    assert "docker compose -f examples/observability/compose.yaml up -d" in readme
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{OTLP_HTTP_PORT}" in readme
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY" in readme
    for name, service in services.items():
        assert f"`{service['image']}" in readme, f"README.md does not name {name}'s image {service['image']}"
