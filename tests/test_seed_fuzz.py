"""schemathesis from LangDB's own documents (seeds 000 and 001, ``tests/seeds/``) against ``relaygate serve``.

``tests/test_openapi_fuzz.py`` fuzzes the gateway from the document it writes about itself; this run takes
the documents relaygate was specified from, so that what LangDB's clients send is what is tried: every
operation of seed 000 (below ``/v1``, where the root routes answer too) and of seed 001 (which names
``/v1`` in its paths), their examples first (seed 001's example request with its script router among
them), then generated cases, positive and negative.

Two checks, besides the answers being JSON: no answer is a 5xx, and no valid request is refused for the
fields issue 22 is about: the ``router`` object (a script router with a script that routes), ``group_by``,
``extra`` and the model (the cases name a model of the mock). Refusals for other reasons
(a message the seed allows that no provider takes, a window whose start is after its end) are the
gateway's to make and are not counted. Bounded: a few cases per operation, under a minute in all.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext

from tests.servers import relaygate_serve

SEEDS = Path(__file__).parent / "seeds"
KEY = "rg-seed-fuzz-key"
ADMIN_KEY = "rg-seed-fuzz-admin"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Project-Id": "default"}
MAX_EXAMPLES = int(os.environ.get("RELAYGATE_FUZZ_EXAMPLES", "8"))
SEED_SCRIPT = "const route = ({ request, headers, models, metrics }) => { return {model: 'test'};};"
DIMENSIONS = ["provider", "model", "user", "label", "tag"]

CONFIG = f"""
providers:
  mock: {{kind: mock}}
default_provider: mock
admin_key: {ADMIN_KEY}
projects:
  - id: default
    keys: [{KEY}]
    request_scripts: true
routers:
  kg_random_router:
    type: script
    script: "{SEED_SCRIPT}"
guards:
  word_count_validator_bd4bdnun: {{type: word_count, stage: input, action: observe, parameters: {{max_words: 100}}}}
  toxicity_detection_4yj4cdvu: {{type: regex, stage: input, action: observe, parameters: {{patterns: ["idiot"]}}}}
"""


def seed(name: str) -> dict[str, Any]:
    """A seed document, with the value domains relaygate documents for the fields it checks narrowed, so that
    a generated "valid" value is one a gateway can honour: ``group_by`` names dimensions it has, a router is
    a script router running the seed's script, ``extra.guards`` names guards it defines."""
    document: dict[str, Any] = copy.deepcopy(yaml.safe_load((SEEDS / name).read_text()))
    schemas = document["components"]["schemas"]
    if "AnalyticsRequest" in schemas:
        schemas["AnalyticsRequest"]["properties"]["group_by"]["items"]["enum"] = DIMENSIONS
        schemas["AnalyticsRequest"]["properties"]["group_by"]["maxItems"] = 3
        schemas["AnalyticsRequest"]["properties"]["group_by"]["uniqueItems"] = True
    chat = schemas.get("CreateChatCompletionRequest") or schemas["ChatCompletionRequest"]
    # Guards are the config's: seed 001's extra.guards names two, which the gateway here defines.
    guards = chat["properties"].get("extra", {}).get("properties", {}).get("guards")
    if guards is not None:
        guards["items"]["enum"] = ["word_count_validator_bd4bdnun", "toxicity_detection_4yj4cdvu"]
    # Seed 000's router is any object; seed 001's has a name, a type and a script: both as seed 001 has it.
    chat["properties"]["router"] = {
        "type": "object",
        # A script router without its script names one of the config's: none other could route.
        "required": ["name", "type", "script"],
        "additionalProperties": False,
        "properties": {
            # Names go into the ledger and the traces: printable (relaygate refuses control characters).
            "name": {"type": "string", "pattern": "^[ -~]{1,64}$"},
            "type": {"type": "string", "enum": ["script"]},
            "script": {"type": "string", "enum": [SEED_SCRIPT]},
        },
    }
    return document


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("seed-fuzz")
    (folder / "relaygate.yaml").write_text(CONFIG)
    with relaygate_serve(["--config", str(folder / "relaygate.yaml")], cwd=folder) as base_url:
        yield base_url


def _body_fields(case: Any) -> dict[str, Any]:
    return case.body if isinstance(case.body, dict) else {}


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode.is_positive


@schemathesis.check
def issue_22_fields_accepted(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """A valid request is not refused for the router, group_by, extra or its model."""
    if not _positive(case) or response.status_code < 400 or response.status_code >= 500:
        return None
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return None
    param = str(error.get("param") or "")
    # mcp_servers is not among them: a server_url on a host outside mcp.allowed_hosts is refused by design (403).
    if param.split(".")[0].split("[")[0] in ("router", "group_by", "groupBy", "extra", "model"):
        raise AssertionError(f"valid request rejected: {response.status_code} {error}")
    if case.path == "/models" and response.status_code != 200:
        raise AssertionError(f"the model list refused a valid request: {response.status_code} {error}")
    return None


def _mock_models(case: Any) -> None:
    """Cases name a model of the mock: the point is what the gateway does with the rest of the body."""
    body = _body_fields(case)
    if "model" in body and _positive(case):
        body["model"] = "mock/echo" if "input" not in body else "mock/text-embedding"
        if "prompt" in body:
            body["model"] = "mock/image"


CHECKS = [schemathesis.checks.not_a_server_error, issue_22_fields_accepted]
PHASES = {"coverage": {"enabled": False}, "stateful": {"enabled": False}}
SEED_000 = schemathesis.openapi.from_dict(
    seed("000_langdb_gateway.yaml"), config=schemathesis.Config.from_dict({"phases": PHASES})
)
SEED_001 = schemathesis.openapi.from_dict(
    seed("001_langdb_gateway.yaml"), config=schemathesis.Config.from_dict({"phases": PHASES})
)
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)


@SEED_000.parametrize()
@FUZZ
def test_seed_000_against_relaygate_serve(case: Any, served: str) -> None:
    _mock_models(case)
    # The seed's first server is the project-scoped base (.../{project_id}/v1); /v1 serves every route of it.
    case.call_and_validate(base_url=served + "/v1", headers=HEADERS, checks=CHECKS, timeout=30)


@SEED_001.parametrize()
@FUZZ
def test_seed_001_against_relaygate_serve(case: Any, served: str) -> None:
    _mock_models(case)
    case.call_and_validate(base_url=served, headers=HEADERS, checks=CHECKS, timeout=30)
