"""A caller's own provider key (``LB-LLM-Key``) goes to the provider and nowhere else: through ``relaygate
serve``, with providers that echo the credentials they were sent in their errors (answers, streams, images),
the key is in no byte of the answers, the exported spans, the log, or the ledger, on SQLite and PostgreSQL.

The key has no credential shape (no ``sk-``, ``Bearer``...): only its being the request's secret
(:meth:`~relaygate.context.RequestContext.add_secret`) gets it scrubbed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import httpx
import orjson
import pytest

from relaygate.secrets import REDACTED
from tests.databases import drop_schemas, new_schema, require_postgres
from tests.fakes.hostile_server import HostileProvider
from tests.fakes.images_server import FakeImages
from tests.otlp import OtlpReceiver
from tests.servers import relaygate_serve, serve_in_thread

CALLER_KEY = "callers-own-provider-credential-7c2f9d41"
CONFIGURED_KEY = "configured-provider-credential-5e8a"
PROJECT_KEY = "project-key-of-the-byok-leak-test-1"
OTHER_KEY = "project-key-without-byok-leak-test-2"
HI = [{"role": "user", "content": "Hi"}]

CONFIG = """\
providers:
  openai: {{kind: openai, base_url: "{hostile}/openai/v1", api_key: {configured}}}
  claude: {{kind: anthropic, base_url: "{hostile}/anthropic/v1", api_key: {configured}}}
  google: {{kind: gemini, base_url: "{hostile}/gemini/v1beta", api_key: {configured}}}
  images: {{kind: openai, base_url: "{images}/v1", api_key: {configured}}}
projects:
  - {{id: studio, keys: ["{project_key}"], byok: true}}
  - {{id: other, keys: ["{other_key}"]}}
database: {database}
retry: {{max_attempts: 1}}
"""


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[HostileProvider, str, FakeImages, str]]:
    hostile = HostileProvider()
    images = FakeImages("openai", keys={CALLER_KEY, CONFIGURED_KEY})
    with serve_in_thread(hostile) as hostile_url, serve_in_thread(images) as images_url:
        yield hostile, hostile_url, images, images_url


def calls(client: httpx.Client) -> dict[str, tuple[int, bytes, str]]:
    """Every kind of call, each with the caller's key; what came back of each."""
    answers: dict[str, tuple[int, bytes, str]] = {}

    def keep(name: str, response: httpx.Response) -> None:
        head = "\n".join(f"{key}: {value}" for key, value in response.headers.items())
        answers[name] = (response.status_code, response.content, head)

    for provider in ("openai", "claude", "google"):
        for model in ("echo-4xx", "echo-401", "echo-5xx", "echo-midstream"):
            for stream in (False, True):
                body = {"model": f"{provider}/{model}", "messages": HI, "stream": stream}
                keep(f"{provider}/{model}/{stream}", client.post("/v1/chat/completions", json=body))
    keep("embeddings", client.post("/v1/embeddings", json={"model": "openai/echo-4xx", "input": "Hi"}))
    keep("responses", client.post("/v1/responses", json={"model": "openai/echo-401", "input": "Hi"}))
    keep("images/echo", client.post("/v1/images", json={"model": "images:echo-key", "prompt": "x"}))
    keep("images/ok", client.post("/v1/images", json={"model": "images:gpt-image-1", "prompt": "a cat"}))
    keep("chat/ok", client.post("/v1/chat/completions", json={"model": "openai/fine", "messages": HI}))
    refused = client.post(
        "/v1/images",
        json={"model": "images:gpt-image-1", "prompt": "x"},
        headers={"authorization": f"Bearer {OTHER_KEY}"},
    )
    keep("images/not-allowed", refused)
    return answers


def serve_and_call(
    tmp_path: Path, upstreams: tuple[HostileProvider, str, FakeImages, str], database: str
) -> tuple[dict[str, tuple[int, bytes, str]], bytes, bytes]:
    hostile, hostile_url, images, images_url = upstreams
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        CONFIG.format(
            hostile=hostile_url,
            images=images_url,
            configured=CONFIGURED_KEY,
            project_key=PROJECT_KEY,
            other_key=OTHER_KEY,
            database=database,
        )
    )
    log = tmp_path / "serve.log"
    with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        with relaygate_serve(["--config", str(config), "--access-log"], env=env, cwd=tmp_path, log=log) as base:
            headers = {"authorization": f"Bearer {PROJECT_KEY}", "lb-llm-key": CALLER_KEY}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                answers = calls(client)
        spans = b"".join(receiver.raw_exports)
    # The key reached the providers as their credential, in each one's header.
    presented = [seen.headers for seen in hostile.requests[-30:]]
    assert any(h.get("authorization") == f"Bearer {CALLER_KEY}" for h in presented)
    assert any(h.get("x-api-key") == CALLER_KEY for h in presented)
    assert any(h.get("x-goog-api-key") == CALLER_KEY for h in presented)
    assert images.last("/images/generations").headers["authorization"] == f"Bearer {CALLER_KEY}"
    assert not any(CONFIGURED_KEY in str(h) for h in presented), "the configured key was not sent"
    return answers, spans, log.read_bytes()


def check(answers: dict[str, tuple[int, bytes, str]], spans: bytes, log: bytes) -> None:
    # The providers' echoes arrived, with the key taken out.
    status, body, _ = answers["openai/echo-4xx/False"]
    assert status == 400 and REDACTED in orjson.loads(body)["error"]["message"]
    status, body, _ = answers["images/echo"]
    error = orjson.loads(body)["error"]
    assert status == 400 and error["message"] == f"Bad request made with key {REDACTED}"
    assert error["param"] == REDACTED and error["code"] == f"key_{REDACTED}"
    assert answers["images/ok"][0] == 200 and answers["chat/ok"][0] == 200
    assert answers["images/not-allowed"][0] == 403
    assert b"echo-midstream" in spans or b"chat" in spans, "the calls were exported"
    for name, (_, body, head) in answers.items():
        assert CALLER_KEY.encode() not in body, f"the key leaked into the answer to {name}"
        assert CALLER_KEY not in head, f"the key leaked into the headers of the answer to {name}"
    assert CALLER_KEY.encode() not in spans, "the key leaked into the exported spans"
    assert CALLER_KEY.encode() not in log, "the key leaked into the log of relaygate serve"


def test_the_callers_key_leaks_nowhere_with_sqlite(
    tmp_path: Path, upstreams: tuple[HostileProvider, str, FakeImages, str]
) -> None:
    answers, spans, log = serve_and_call(tmp_path, upstreams, f"sqlite:///{tmp_path / 'ledger.db'}")
    check(answers, spans, log)
    ledger = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    assert b"gpt-image-1" in ledger, "the calls were recorded"
    assert hashlib.sha256(CALLER_KEY.encode()).hexdigest()[:8].encode() in ledger, "by the key's fingerprint"
    assert CALLER_KEY.encode() not in ledger, "the key leaked into the ledger"


def test_the_callers_key_leaks_nowhere_with_postgresql(
    tmp_path: Path, upstreams: tuple[HostileProvider, str, FakeImages, str]
) -> None:
    url = require_postgres()
    schema = new_schema()
    try:
        answers, spans, log = serve_and_call(tmp_path, upstreams, f"{url}?schema={schema}")
        check(answers, spans, log)
        rows = anyio.run(dump_schema, url, schema)
    finally:
        anyio.run(drop_schemas, schema)
    everything = "\n".join(rows)
    assert "gpt-image-1" in everything, "the calls were recorded"
    assert hashlib.sha256(CALLER_KEY.encode()).hexdigest()[:8] in everything, "by the key's fingerprint"
    assert CALLER_KEY not in everything, "the key leaked into the ledger"


async def dump_schema(url: str, schema: str) -> list[str]:
    """Every row of every table of ``schema``, as text."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
        rows: list[str] = []
        for (table,) in tables:
            rows += [str(row[0]) for row in await conn.fetch(f'SELECT t::text FROM "{schema}"."{table}" t')]
        return rows
    finally:
        await conn.close()
