"""A bounded schemathesis run against ``/openapi.json``, with every middleware on.

The gateway runs on a real uvicorn on 127.0.0.1 with keys and projects, an admin key, the ledger on
SQLite, rate limits and budgets, regex and PII guards, and tracing with content capture into an in-memory
exporter; the mock provider answers. schemathesis generates requests from the document (valid ones, and
ones that break it) for every operation and checks that no answer is a 5xx and that every answer matches
the document: its status, content type, headers and schema. Once the run is over, the gateway's log must
hold no traceback (nor any error), and every span must encode as OTLP protobuf. Bounded by
``MAX_EXAMPLES`` per operation, so the run takes seconds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from opentelemetry.exporter.otlp.proto.common._internal import _encode_attributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relaygate import Gateway
from relaygate.limits.config import ProjectLimits
from relaygate.pricing import ImagePrices, ModelPrice
from relaygate.settings import GuardSettings, ProjectSettings, ProviderSettings, Settings, TelemetrySettings
from tests.servers import serve_in_thread

# The document's examples name project "default" (the embedded default's) and thread "thread-1".
KEY = "rg-fuzz-key-project-default"
ADMIN_KEY = "rg-fuzz-admin-key"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Admin-Key": ADMIN_KEY}
# Random cases per operation (about 30 of them, counting the /{project_id}/v1/... forms), besides the
# documented examples and the coverage phase's boundary values; RELAYGATE_FUZZ_EXAMPLES=200 for a long hunt.
MAX_EXAMPLES = int(os.environ.get("RELAYGATE_FUZZ_EXAMPLES", "10"))


def fuzz_settings(database: Path) -> Settings:
    limits = {
        "requests_per_minute": 1_000_000,
        "tokens_per_minute": 100_000_000,
        "usd_per_day": 1000,
        "usd_total": 100_000,
        "keys": {"default": {"requests_per_minute": 1_000_000}},
        "users": {"default": {"usd_per_day": 100}},
    }
    return Settings(
        providers={"mock": ProviderSettings(kind="mock")},
        projects=[
            ProjectSettings(
                id="default", keys=[KEY], limits=ProjectLimits.model_validate(limits), guards=["no_secrets", "pii"]
            ),
            ProjectSettings(id="proj-b", keys=["rg-fuzz-key-project-b"]),
        ],
        admin_key=ADMIN_KEY,
        database=f"sqlite:///{database}",
        # Budgets in USD refuse a model without a price.
        prices={
            "mock/echo": ModelPrice(input=1, output=2),
            "mock/text-embedding": ModelPrice(input=0.1),
            "mock/image": ModelPrice(images=ImagePrices(prices={"*": {"*": 0.01}})),
        },
        telemetry=TelemetrySettings(capture_content=True),
        guards={
            "no_secrets": GuardSettings(
                type="regex", stage="input", action="block", parameters={"patterns": [r"sk-[A-Za-z0-9]{8,}"]}
            ),
            "pii": GuardSettings(type="pii", stage="output", action="redact"),
        },
    )


class LogRecords(logging.Handler):
    """Every record of WARNING and above that any logger (the gateway's, uvicorn's, OpenTelemetry's) emits."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [
            self.format(r)
            for r in self.records
            if r.exc_info is not None or r.levelno >= logging.ERROR or "Traceback" in r.getMessage()
        ]


LOGGED = LogRecords()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, InMemorySpanExporter]]:
    root = logging.getLogger()
    root.addHandler(LOGGED)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway = Gateway(fuzz_settings(tmp_path_factory.mktemp("fuzz") / "ledger.db"), tracer_provider=provider)
    try:
        with serve_in_thread(gateway.app) as base_url:
            yield base_url, exporter
    finally:
        root.removeHandler(LOGGED)


# The document the gateway built from this config (its routes do not depend on the database's path); the
# served one is checked to be the same below. schemathesis' lazy loader (pytest.from_fixture) does not run
# on pytest 9, hence a document made at import, which builds the gateway but starts nothing.
DOCUMENT = Gateway(fuzz_settings(Path("unused.db"))).openapi.document()
# The /{project_id}/v1/... forms run the same code as the plain paths past ProjectScopeMiddleware: they get
# the random phase only, not the coverage phase's every boundary value again.
CONFIG = schemathesis.Config.from_dict(
    {"operations": [{"include-path-regex": r"^/\{project_id\}/", "phases": {"coverage": {"enabled": False}}}]}
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_served_document_is_the_one_fuzzed(served: tuple[str, InMemorySpanExporter]) -> None:
    import httpx

    base_url, _ = served
    assert httpx.get(f"{base_url}/openapi.json").json() == DOCUMENT


CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
def test_every_answer_matches_the_document_and_none_is_a_5xx(
    case: Any, served: tuple[str, InMemorySpanExporter]
) -> None:
    base_url, _ = served
    case.call_and_validate(base_url=base_url, headers=HEADERS, checks=CHECKS, timeout=30)


def test_the_run_reached_the_provider_and_the_ledger(served: tuple[str, InMemorySpanExporter]) -> None:
    """The documented examples got past every middleware to the mock and back: the run fuzzed more than
    refusals. (Runs after the fuzzing above, on the same server.)"""
    _, exporter = served
    spans = exporter.get_finished_spans()
    answered = {
        span.name
        for span in spans
        if span.kind == SpanKind.SERVER and (span.attributes or {}).get("http.response.status_code") == 200
    }
    print(
        sorted(
            {
                (s.name, (s.attributes or {}).get("http.response.status_code"))
                for s in spans
                if s.kind == SpanKind.SERVER
            }
        )
    )
    assert {
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
        "POST /v1/images/generations",
        "POST /v1/responses",
    } <= answered
    assert any(span.kind == SpanKind.CLIENT for span in spans), "no call reached the provider"


def test_the_gateway_logged_no_traceback_and_every_span_encodes(served: tuple[str, InMemorySpanExporter]) -> None:
    """After the run: nothing the gateway (or uvicorn, or the SDK) logged is an error or a traceback, and
    every span it recorded, captured content and request values included, encodes as OTLP protobuf."""
    _, exporter = served
    spans = exporter.get_finished_spans()
    encoded = encode_spans(spans)
    assert len(encoded.SerializeToString()) > 0
    for span in spans:  # the encoder drops (and logs) what it cannot encode: nothing was dropped
        assert len(_encoded_attributes(span)) == len(span.attributes or {}), span.name
    assert LOGGED.tracebacks() == []


def _encoded_attributes(span: Any) -> list[Any]:
    return list(_encode_attributes(span.attributes) or [])
