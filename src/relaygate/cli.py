"""The ``relaygate`` command: ``serve``, ``check``, ``keys`` and ``openapi``."""

from __future__ import annotations

import argparse
import copy
import json
import logging
import logging.config
import sys
from collections.abc import Sequence
from typing import Any

from relaygate.gateway import Gateway
from relaygate.keys import hash_key, new_key
from relaygate.settings import (
    CONFIG_ENV_VAR,
    ConfigError,
    Settings,
    load_settings,
    set_config_path,
    share_ui_session_secret,
)
from relaygate.telemetry import configure_export

__all__ = ["build_parser", "main", "shared_limits_warning", "worker_app"]

logger = logging.getLogger("relaygate")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    result: int = args.run(args)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command's parser; docs/reference/cli.md is rendered from it (relaygate.reference)."""
    parser = argparse.ArgumentParser(prog="relaygate", description="An OpenAI-compatible AI gateway.")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the gateway on uvicorn")
    serve.add_argument("--config", help=f"config file (default: ${CONFIG_ENV_VAR}, then ./relaygate.yaml if present)")
    serve.add_argument("--host", help="address to bind (default: server.host of the config, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: server.port, 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes (default: server.workers, 1); they share limits only through counters: redis://...",
    )
    serve.add_argument(
        "--root-path",
        help="path prefix a reverse proxy serves the gateway under and strips (default: server.root_path)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        help="comma-separated proxy addresses whose X-Forwarded-For and -Proto are trusted "
        "(default: server.forwarded_allow_ips, 127.0.0.1)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log every request (default: server.access_log, off)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="what is logged"
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check", help="validate the config file and summarise it")
    check.add_argument("--config", help=f"config file (default: ${CONFIG_ENV_VAR}, then ./relaygate.yaml if present)")
    check.set_defaults(run=_check)

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document of the gateway's API (JSON)")
    openapi.add_argument("--config", help="config file (its routes and server.root_path)")
    openapi.add_argument("--server-url", help="the document's servers URL (default: server.root_path, or /)")
    openapi.add_argument("--output", "-o", help="write the document to this file instead of standard output")
    openapi.set_defaults(run=_openapi)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(title="keys commands")
    new = keys.add_parser("new", help="print a new random key, then the sha256: line for the config")
    new.set_defaults(run=_keys_new)
    hashed = keys.add_parser("hash", help="print the sha256: line of a key")
    hashed.add_argument("key", help="the key a client sends (Authorization: Bearer ...)")
    hashed.set_defaults(run=_keys_hash)
    return parser


def _load(path: str | None) -> Settings | None:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"relaygate: invalid configuration\n{exc}", file=sys.stderr)
        return None


def _build(settings: Settings) -> Gateway | None:
    """The gateway, or ``None`` after saying why not: some settings (guards) are checked only as it is built."""
    try:
        return Gateway(settings)
    except ConfigError as exc:
        print(f"relaygate: invalid configuration\n{exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from relaygate import serving

    settings = _load(args.config)
    if settings is None:
        return 2
    server = settings.server
    workers = args.workers or server.workers
    options: dict[str, Any] = {
        "host": args.host or server.host,
        "port": server.port if args.port is None else args.port,
        "root_path": server.root_path if args.root_path is None else args.root_path,
        "proxy_headers": True,
        "forwarded_allow_ips": args.forwarded_allow_ips or server.forwarded_allow_ips,
        "access_log": server.access_log if args.access_log is None else args.access_log,
        "log_level": args.log_level,
        "log_config": _log_config(),
        "timeout_graceful_shutdown": 30,
    }
    # uvicorn sets logging up only once it runs; what the gateway logs before then (where spans and
    # metrics go, with one worker) would be lost without this.
    logging.config.dictConfig(options["log_config"])
    gateway = _build(settings)
    if gateway is None:
        return 2
    _explain(settings)
    if (warning := shared_limits_warning(settings, workers)) is not None:
        print(warning, file=sys.stderr)
    if workers > 1:
        # Each worker process builds its own gateway from the same file, and signs dashboard sessions with one
        # secret (unless the config gives one), so that a sign-in holds whichever worker answers.
        if args.config:
            set_config_path(args.config)
        share_ui_session_secret()
        return serving.run("relaygate.cli:worker_app", limits=server, factory=True, workers=workers, **options)
    return serving.run(_serve_app(settings, gateway), limits=server, workers=1, **options)


def _served(settings: Settings, gateway: Gateway | None = None) -> Gateway:
    """The gateway of a process ``relaygate serve`` owns: it may install OTLP export for itself."""
    gateway = gateway if gateway is not None else Gateway(settings)
    recorder = None
    if settings.server.recorder:
        from relaygate.recorder import Recorder, RecorderConfig

        meter = gateway.telemetry.meter if gateway.telemetry is not None else None
        config = RecorderConfig(database=settings.database, idle_priority=settings.server.recorder_priority == "idle")
        recorder = Recorder(config, meter=meter)
    gateway.export = configure_export(settings.telemetry, recorder=recorder)
    if recorder is not None and (
        recorder.config.traces_endpoint is not None
        or recorder.config.metrics_endpoint is not None
        or gateway.ledger is not None
    ):
        gateway.use_recorder(recorder)
    gateway.gc_thresholds = settings.server.gc_thresholds
    return gateway


def _serve_app(settings: Settings, gateway: Gateway | None = None) -> Any:
    """What uvicorn serves: the gateway, and the 408 for a body that does not come in time."""
    from relaygate.serving import BodyTimeout

    return BodyTimeout(_served(settings, gateway).app, seconds=settings.server.body_timeout)


def worker_app() -> Any:
    """The app of one ``relaygate serve --workers N`` worker (each exports its own spans)."""
    return _serve_app(load_settings())


def _explain(settings: Settings) -> None:
    if not settings.providers:
        print(
            "relaygate: no provider is configured, so only the built-in mock provider answers (model mock/echo).\n"
            "relaygate: set OPENAI_API_KEY, or write relaygate.yaml with your providers "
            "(see docs/guides/providers.md).",
            file=sys.stderr,
        )


def shared_limits_warning(settings: Settings, workers: int) -> str | None:
    """Why limits would not hold across ``workers`` processes, if they would not."""
    if workers > 1 and settings.counters is None and any(p.limits is not None for p in settings.projects):
        return (
            f"relaygate: limits are counted in process, so each of the {workers} workers allows the whole of every "
            "limit; set counters: redis://host:6379/0 to share them (see docs/guides/scaling.md)."
        )
    return None


def _check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 2
    gateway = _build(settings)
    if gateway is None:
        return 2
    print("providers: " + ", ".join(f"{name} ({p.kind})" for name, p in gateway.providers.items()))
    for model in gateway.router.virtual.values():
        print(f"virtual model {model.name}: {model.strategy} over {', '.join(t.key for t in model.targets)}")
    print(f"projects: {', '.join(p.id for p in settings.projects) or '(none: every request is accepted)'}")
    print(f"admin API: {'on' if settings.admin_key else 'off'}")
    print(f"guards: {', '.join(f'{name} ({guard.type})' for name, guard in settings.guards.items()) or '(none)'}")
    return 0


def _openapi(args: argparse.Namespace) -> int:
    """The document ``GET /openapi.json`` serves, for client generators, without a running gateway."""
    settings = _load(args.config)
    if settings is None:
        return 2
    gateway = _build(settings)
    if gateway is None:
        return 2
    server_url = args.server_url if args.server_url is not None else settings.server.root_path
    text = json.dumps(gateway.openapi.document(server_url or ""), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    key = new_key()
    print(key)
    print(hash_key(key))
    print("relaygate: give the first line to the client; put the second in a project's keys: list.", file=sys.stderr)
    return 0


def _keys_hash(args: argparse.Namespace) -> int:
    print(hash_key(args.key))
    return 0


def _log_config() -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["relaygate"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    # Every line the server writes (uvicorn's tracebacks too) goes through the gateways' secret scrubber.
    config["filters"] = {**config.get("filters", {}), "relaygate_secrets": {"()": "relaygate.secrets.log_filter"}}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "relaygate_secrets"]
    return config


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
