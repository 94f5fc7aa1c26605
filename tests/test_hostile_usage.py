"""A provider reporting token usage out of range (issue 14 item 4), through ``relaygate serve`` on SQLite and
PostgreSQL: the caller gets its answer, the call is recorded and settled as one without usage, the ledger's
queries keep answering, and the gateway says it once per provider in its log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.hostile_server import BAD_USAGE, HostileProvider
from tests.servers import relaygate_serve, serve_in_thread

KEY = "rg-usage-test-key"
UPSTREAM_KEY = "sk-usage-upstream-key"
CONFIG = """\
providers:
  openai: {{kind: openai, base_url: "{url}/openai/v1", api_key: {upstream_key}}}
  claude: {{kind: anthropic, base_url: "{url}/anthropic/v1", api_key: {upstream_key}}}
database: "{database}"
retry: {{max_attempts: 1}}
prices:
{prices}
projects:
  - id: proj-a
    keys: ["{key}"]
    limits: {{usd_total: 1000}}
"""


MODELS = [f"{provider}/usage-{kind}" for provider in ("openai", "claude") for kind in BAD_USAGE]
PRICES = "\n".join(f'  "{model}": {{input: 1, output: 2}}' for model in [*MODELS, "openai/gpt"])


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    with serve_in_thread(HostileProvider()) as url:
        yield url


def test_usage_out_of_range_is_unknown_and_the_call_is_recorded(
    tmp_path: Path, hostile_url: str, database_url: str
) -> None:
    config = tmp_path / "relaygate.yaml"
    config.write_text(
        CONFIG.format(url=hostile_url, upstream_key=UPSTREAM_KEY, database=database_url, key=KEY, prices=PRICES)
    )
    log = tmp_path / "serve.log"
    headers = {"authorization": f"Bearer {KEY}"}
    models = MODELS
    with relaygate_serve(["--config", str(config)], cwd=tmp_path, log=log) as base:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for model in models:
                for stream in (False, True):
                    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream}
                    response = client.post("/v1/chat/completions", json=body)
                    assert response.status_code == 200, (model, stream, response.text)
                    assert "Hello from the hostile upstream" in response.text
            # A good call after the bad ones: the ledger still adds up.
            response = client.post(
                "/v1/chat/completions", json={"model": "openai/gpt", "messages": [{"role": "user", "content": "Hi"}]}
            )
            assert response.status_code == 200, response.text
            for path in ("/usage/models", "/usage/total", "/analytics/summary", "/analytics", "/threads"):
                answer = client.post(path, json={"period": "last_day"})
                assert answer.status_code == 200, (path, answer.text)
            by_model = {
                row["model"]: row for row in client.post("/usage/models", json={"period": "last_day"}).json()["models"]
            }
            for model in models:
                row = by_model[model]
                assert row["requests"] == 2 and row["errors"] == 0, row
                assert row["input_tokens"] == row["output_tokens"] == 0, (
                    row
                )  # unknown, not the provider's figures  # both calls stored
            total = client.post("/usage/total", json={"period": "last_day"}).json()
            assert total["requests"] == len(models) * 2 + 1
    text = log.read_text()
    assert "Traceback" not in text
    for provider in ("openai", "claude"):
        warnings = [
            line for line in text.splitlines() if f"upstream '{provider}' reported token usage out of range" in line
        ]
        assert len(warnings) == 1, text
