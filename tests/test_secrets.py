"""Secrets never leave the gateway: a provider that echoes the gateway's credentials in its errors, through
``relaygate serve``, to its answers, streams, log, exported spans and ledger; and the scrubber itself.

The provider is ``tests/fakes/hostile_server.py`` behind providers of every kind (OpenAI-compatible,
Anthropic, Gemini), with keys of every known shape and one of none (only its being configured gets it
scrubbed), and a custom header holding a secret.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from relaygate import Gateway, get_context
from relaygate.errors import UpstreamError
from relaygate.secrets import REDACTED, REQUEST_SECRETS, Secrets, configured_secrets, install_log_filter
from relaygate.settings import ProviderSettings, RetrySettings, Settings
from tests.fakes.hostile_server import HostileProvider
from tests.otlp import OtlpReceiver
from tests.servers import relaygate_serve, serve_in_thread

OPENAI_KEY = "sk-proj-hostileTestKey0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-hostile-anthropic-key-0123456789"
GEMINI_KEY = "AIzaSyHostileGeminiKey0123456789abcdefgh"
PLAIN_KEY = "plainly-configured-secret-7f3a"  # no known shape: scrubbed because it is configured
HEADER_SECRET = "custom-header-secret-42"
PROJECT_KEY = "project-key-for-the-hostile-test"
ADMIN_KEY = "admin-key-hostile-test-9c1e"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, GEMINI_KEY, PLAIN_KEY, HEADER_SECRET, PROJECT_KEY, ADMIN_KEY)
PROVIDERS = ("openai", "claude", "google", "plain")
HI = [{"role": "user", "content": "Hi"}]

CONFIG = """\
providers:
  openai:
    kind: openai
    base_url: {url}/openai/v1
    api_key: {openai_key}
    headers: {{x-custom-auth: {header_secret}}}
  claude: {{kind: anthropic, base_url: "{url}/anthropic/v1", api_key: {anthropic_key}}}
  google: {{kind: gemini, base_url: "{url}/gemini/v1beta", api_key: {gemini_key}}}
  plain: {{kind: openai, base_url: "{url}/openai/v1", api_key: {plain_key}}}
projects:
  - id: proj-a
    keys: ["{project_key}"]
admin_key: {admin_key}
database: sqlite:///{db}
retry: {{max_attempts: 1}}
"""


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[HostileProvider, str]]:
    fake = HostileProvider()
    with serve_in_thread(fake) as url:
        yield fake, url


def _no_secret_in(where: str, data: bytes | str) -> None:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {where}"


def test_no_configured_secret_leaves_relaygate_serve(tmp_path: Path, hostile: tuple[HostileProvider, str]) -> None:
    fake, url = hostile
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        CONFIG.format(
            url=url,
            openai_key=OPENAI_KEY,
            anthropic_key=ANTHROPIC_KEY,
            gemini_key=GEMINI_KEY,
            plain_key=PLAIN_KEY,
            header_secret=HEADER_SECRET,
            project_key=PROJECT_KEY,
            admin_key=ADMIN_KEY,
            db=tmp_path / "ledger.db",
        )
    )
    log = tmp_path / "serve.log"
    answers: dict[str, tuple[int, bytes, str]] = {}
    with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        with relaygate_serve(["--config", str(config), "--access-log"], env=env, cwd=tmp_path, log=log) as base:
            headers = {"authorization": f"Bearer {PROJECT_KEY}", "x-admin-key": ADMIN_KEY}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                for provider in PROVIDERS:
                    for model in ("echo-4xx", "echo-401", "echo-5xx", "echo-midstream"):
                        for stream in (False, True):
                            request = {"model": f"{provider}/{model}", "messages": HI, "stream": stream}
                            response = client.post("/v1/chat/completions", json=request)
                            head = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
                            answers[f"{provider}/{model}/{'stream' if stream else 'whole'}"] = (
                                response.status_code,
                                response.content,
                                head,
                            )
                # The admin API and a listing, with every key in play.
                client.get("/admin/models")
                client.get("/v1/models")
        spans = b"".join(receiver.raw_exports)
    assert fake.requests, "the provider was called"

    # The providers' echoes arrived and were relayed, their secrets replaced and the rest kept.
    status, body, _ = answers["openai/echo-4xx/whole"]
    error = orjson.loads(body)["error"]
    assert status == 400 and error["message"].startswith("Invalid request: the headers were authorization=Bearer ")
    assert REDACTED in error["message"] and REDACTED in error["param"] and REDACTED in error["code"]
    status, body, _ = answers["plain/echo-401/whole"]
    error = orjson.loads(body)["error"]
    assert status == 401 and error["code"] == "provider_auth_error"
    assert "Incorrect API key provided: authorization=Bearer [redacted]" in error["message"]
    assert error["message"].endswith("Find yours elsewhere.")
    status, body, _ = answers["claude/echo-5xx/whole"]
    assert status == 502 and "x-api-key: [redacted]" in orjson.loads(body)["error"]["message"]
    for provider in PROVIDERS:
        status, body, _ = answers[f"{provider}/echo-midstream/stream"]
        frames = body.decode().strip().split("\n\n")
        assert status == 200 and "Hello from the hostile upstream" in body.decode()
        last = orjson.loads(frames[-1].removeprefix("data: "))["error"]
        assert "internal error while using credentials" in last["message"] and REDACTED in last["message"]
        status, body, _ = answers[f"{provider}/echo-4xx/stream"]
        assert status == 400 and REDACTED in orjson.loads(body)["error"]["message"]

    for name, (_, body, head) in answers.items():
        _no_secret_in(f"the answer to {name}", body)
        _no_secret_in(f"the headers of the answer to {name}", head)
    _no_secret_in("the exported spans", spans)
    assert b"invalid_request_error" in spans or b"bad_" in spans, "the failed calls were exported"
    _no_secret_in("the log of relaygate serve", log.read_bytes())
    ledger = b"".join(path.read_bytes() for path in tmp_path.glob("ledger.db*"))
    assert b"echo-4xx" in ledger, "the calls were recorded"
    _no_secret_in("the ledger", ledger)


# --- a request's own secret -------------------------------------------------------------------------------

BYOK = "caller-own-provider-key-5d2e9"


@pytest.mark.anyio
async def test_a_secret_of_the_request_alone_is_scrubbed_from_its_errors(hostile: tuple[HostileProvider, str]) -> None:
    _, url = hostile
    gateway = Gateway(
        Settings(
            providers={"openai": ProviderSettings(kind="openai", base_url=url + "/openai/v1", api_key=OPENAI_KEY)},
            retry=RetrySettings(max_attempts=1),
            database=None,
        )
    )

    async def bring_your_own_key(scope: Scope, receive: Receive, send: Send) -> None:
        # What issue 17's bring-your-own-key will do: the caller's provider key, known for this request only.
        if scope["type"] == "http":
            get_context(scope).add_secret(BYOK)
        await gateway.app(scope, receive, send)

    async with gateway.lifespan():
        transport = httpx.ASGITransport(app=bring_your_own_key)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            # The hostile provider echoes the request's user, which here is the request's own secret.
            body = {"model": "openai/echo-4xx", "messages": HI, "user": BYOK}
            response = await client.post("/v1/chat/completions", json=body)
            plain = await client.post("/v1/chat/completions", json={**body, "user": "someone-else-entirely"})
    message = response.json()["error"]["message"]
    assert response.status_code == 400 and message.startswith(f"Invalid request for user {REDACTED}: ")
    assert BYOK not in response.text and OPENAI_KEY not in response.text
    # Another request's user is no secret of its own: kept as the provider said it.
    assert "for user someone-else-entirely" in plain.json()["error"]["message"]


# --- the scrubber ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Incorrect API key provided: sk-abc123def456ghi789.", "Incorrect API key provided: [redacted]."),
        ("Authorization: Bearer eyJhbGciOi.xyz-token_123", "Authorization: Bearer [redacted]"),
        ("key sk-proj-AbCdEf0123456789 and sk-ant-api03-xyz0123456789", "key [redacted] and [redacted]"),
        ("google said AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUv", "google said [redacted]"),
        ("a relaygate key rg-" + "x" * 43 + " in a message", "a relaygate key [redacted] in a message"),
        ("the configured one: plainly-configured-secret-7f3a!", "the configured one: [redacted]!"),
        # Not credentials: kept as they were.
        ("task-manager and sk-learn and Bearer auth", "task-manager and sk-learn and Bearer auth"),
        ("Basic authentication is required", "Basic authentication is required"),
        ("max_tokens is too large: 9999999", "max_tokens is too large: 9999999"),
    ],
)
def test_the_scrubber_replaces_known_secrets_and_credential_shapes(text: str, scrubbed: str) -> None:
    assert Secrets([PLAIN_KEY, "short"]).scrub(text) == scrubbed


def test_short_values_are_no_secrets_and_a_request_adds_its_own() -> None:
    secrets = Secrets(["EMPTY", "ollama"])
    assert secrets.known == frozenset()
    assert secrets.scrub("run ollama pull llama3; EMPTY key") == "run ollama pull llama3; EMPTY key"
    more = secrets.extended(["a-request-own-secret"])
    assert more is not secrets and more.scrub("x a-request-own-secret y") == "x [redacted] y"
    assert secrets.scrub("x a-request-own-secret y") == "x a-request-own-secret y"


def test_every_secret_of_the_configuration_is_known() -> None:
    settings = Settings(
        providers={
            "a": ProviderSettings(
                kind="openai",
                base_url="https://user:url-password-123@example.com/v1",
                api_key=OPENAI_KEY,
                headers={"Authorization": "Bearer header-token-0123", "anthropic-version": "2023-06-01"},
            )
        },
        projects=[{"id": "p", "keys": [PROJECT_KEY, "sha256:" + "0" * 64]}],
        admin_key=ADMIN_KEY,
        telemetry={"headers": {"x-honeycomb-team": "otlp-header-secret"}},
        database="postgresql://relay:database-password@db:5432/relaygate",
        counters="redis://:redis-password-1@cache:6379/0",
    )
    known = set(configured_secrets(settings))
    assert {
        OPENAI_KEY,
        "url-password-123",
        "Bearer header-token-0123",
        "header-token-0123",
        PROJECT_KEY,
        ADMIN_KEY,
        "otlp-header-secret",
        "database-password",
        "redis-password-1",
    } <= known
    assert "2023-06-01" not in known and not any(value.startswith("sha256:") for value in known)


def test_an_error_is_scrubbed_in_every_field_and_header() -> None:
    error = UpstreamError(
        f"bad key {PLAIN_KEY}",
        param=PLAIN_KEY,
        code=f"code-{PLAIN_KEY}",
        type="sk-0123456789abcdef",
        headers=[(b"x-request-id", PLAIN_KEY.encode()), (b"retry-after", b"7")],
    )
    Secrets([PLAIN_KEY]).scrub_error(error)
    assert (error.message, error.param, error.code, error.type) == (
        "bad key [redacted]",
        "[redacted]",
        "code-[redacted]",
        "[redacted]",
    )
    assert error.headers == [(b"x-request-id", b"[redacted]"), (b"retry-after", b"7")]
    assert str(error) == "bad key [redacted]"


def test_log_lines_of_relaygate_are_scrubbed_of_the_gateways_and_the_requests_secrets() -> None:
    Gateway(Settings(providers={"p": ProviderSettings(kind="openai", base_url="http://x/v1", api_key=PLAIN_KEY)}))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("relaygate.proxy")
    logger.addHandler(handler)

    class Request:
        secrets = Secrets([BYOK])

    token = REQUEST_SECRETS.set(Request())
    try:
        logger.warning("the provider said %s and %s", PLAIN_KEY, BYOK)
        try:
            raise RuntimeError(f"failed with {PLAIN_KEY}")
        except RuntimeError:
            logger.exception("unexpected error for Bearer abcdefgh12345678")
    finally:
        REQUEST_SECRETS.reset(token)
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "the provider said [redacted] and [redacted]" in written
    assert "RuntimeError: failed with [redacted]" in written and "Bearer [redacted]" in written
    assert PLAIN_KEY not in written
    assert logging.getLogger("relaygate").filters, "the filter sits on relaygate's loggers"


def test_installing_the_log_filter_twice_puts_it_on_once() -> None:
    first = install_log_filter(Secrets(["first-gateway-secret"]))
    second = install_log_filter(Secrets(["second-gateway-secret"]))
    assert first is second
    assert logging.getLogger("relaygate.proxy").filters.count(first) == 1
    assert {"first-gateway-secret", "second-gateway-secret"} <= first.secrets.known


def test_a_formatter_that_reads_the_arguments_still_gets_them_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn's access log formats its record's args itself; `relaygate serve` puts the filter on its handlers.
    from uvicorn.logging import AccessFormatter

    scrubber = install_log_filter(Secrets([PLAIN_KEY]))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    handler.addFilter(scrubber)
    logger = logging.getLogger("tests.access")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        path = f"/v1/models?key={PLAIN_KEY}"
        logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert '127.0.0.1:5000 - "GET /v1/models?key=[redacted] HTTP/1.1" 200' in written
    assert PLAIN_KEY not in written
    assert "Logging error" not in capsys.readouterr().err


def test_a_long_error_body_is_cut_between_words_so_no_key_is_cut_in_two() -> None:
    from relaygate.providers.errors import upstream_error

    key = "unshaped-configured-key-" + "z" * 30
    raw = ("word " * 199 + "ab " + key + " and more").encode()  # the key straddles the 1,000th character
    error = upstream_error("p", 502, {}, raw)
    assert len(error.message) <= 1004 and error.message.endswith("ab ...")
    assert "unshaped" not in error.message
