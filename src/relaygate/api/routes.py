"""The routes :class:`~relaygate.api.ApiApp` serves, declared once with their documentation.

Each also answers below ``/v1`` (``/v1/threads``) and so under a project prefix (``/{project_id}/v1/threads``);
``/admin/...`` and ``/projects/...`` need the admin key. See :mod:`relaygate.routes`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from relaygate.api import answers
from relaygate.api.bodies import (
    MAX_OFFSET,
    AnalyticsRequest,
    CustomPrice,
    ModelCreateRequest,
    SummaryRequest,
    ThreadsRequest,
    UsageModelsRequest,
    WindowRequest,
)
from relaygate.errors import AdminErrorBody
from relaygate.routes import Route

__all__ = ["API_ROUTES", "MAX_MESSAGES_PAGE", "OPENAPI", "MessagesQuery"]

MAX_MESSAGES_PAGE = 1000
# Thread ids come from callers' X-Thread-Id headers and may hold a "/" (sent as %2F or as is).
THREAD_ID = {"thread_id": r".{1,256}?"}


class MessagesQuery(BaseModel):
    """The query of ``GET /threads/{thread_id}/messages`` (read by ``ApiApp``, documented from here)."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(100, ge=1, le=MAX_MESSAGES_PAGE, description="Messages per page.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Messages to skip.")


LEDGER = (
    "Reads the ledger, scoped to the caller's project. With the ledger off (`database: null`) it answers 404 "
    "`ledger_off`."
)


def _management(method: str, path: str, operation_id: str, summary: str, tag: str, **kwargs: Any) -> Route:
    description = kwargs.pop("description", "")
    if kwargs.get("access") == "admin":
        # Seed 003's clients read {code, message}; OpenAI's read error: both are there (relaygate.errors).
        kwargs["error_body"] = AdminErrorBody
    return Route(
        method,
        path,
        operation_id,
        summary,
        tag,
        description=f"{description} {LEDGER}".strip(),
        v1_alias=True,
        **kwargs,
    )


WINDOW = (
    "The window is `period` (`last_hour` ... `last_year`), or `start_time_us`/`end_time_us` (microseconds since "
    "the epoch), or ISO `start_time`/`end_time`; by default the last month."
)

API_ROUTES = (
    _management(
        "POST",
        "/threads",
        "listThreads",
        "List threads",
        "Threads",
        description="The project's threads (calls sent with the same `X-Thread-Id`), most recent first.",
        body=ThreadsRequest,
        answer=answers.ThreadList,
    ),
    _management(
        "GET",
        "/threads/{thread_id}/messages",
        "listThreadMessages",
        "List a thread's messages",
        "Threads",
        description="The messages of a thread in order, with each answer's model and cost.",
        query=MessagesQuery,
        answer=answers.ThreadMessagesAnswer,
        errors=(404,),
        patterns=THREAD_ID,
    ),
    _management(
        "GET",
        "/threads/{thread_id}/cost",
        "getThreadCost",
        "Get a thread's cost",
        "Threads",
        description="What a thread's calls cost, and their tokens.",
        answer=answers.ThreadCostAnswer,
        errors=(404,),
        patterns=THREAD_ID,
    ),
    _management(
        "POST",
        "/analytics",
        "getAnalytics",
        "Analytics over time",
        "Analytics",
        description=(
            "Cost, tokens and calls per time bucket (`min_unit`: minute ... month), each bucket split by up to three "
            f"of provider, model, user, label, tag (`group_by`). {WINDOW}"
        ),
        body=AnalyticsRequest,
        answer=answers.AnalyticsAnswer,
    ),
    _management(
        "POST",
        "/analytics/summary",
        "getAnalyticsSummary",
        "Analytics summary",
        "Analytics",
        description=f"Totals over the window, grouped by up to three of provider, model, user, label, tag. {WINDOW}",
        body=SummaryRequest,
        answer=answers.SummaryAnswer,
    ),
    _management(
        "POST",
        "/usage/total",
        "getUsageTotal",
        "Total usage",
        "Usage",
        description=f"The project's totals over the window. {WINDOW}",
        body=WindowRequest,
        answer=answers.UsageTotalAnswer,
    ),
    _management(
        "POST",
        "/usage/models",
        "getUsageByModel",
        "Usage by model",
        "Usage",
        description=f"Totals per model, and per time bucket with `min_unit`. {WINDOW}",
        body=UsageModelsRequest,
        answer=answers.UsageModelsAnswer,
    ),
    _management(
        "GET",
        "/pricing",
        "listPrices",
        "List prices",
        "Pricing",
        description="Every price the gateway knows (catalogue, config, registry, the project's custom prices).",
        answer=answers.PriceList,
    ),
    _management(
        "POST",
        "/admin/models",
        "registerModel",
        "Register a model",
        "Admin",
        description="Adds a model (a name served by one of the gateway's providers, with its prices) to the registry.",
        access="admin",
        body=ModelCreateRequest,
        answer=answers.RegisteredModel,
        scoped=False,
    ),
    _management(
        "GET",
        "/admin/models",
        "listRegisteredModels",
        "List registered models",
        "Admin",
        access="admin",
        answer=answers.RegisteredModelList,
        scoped=False,
    ),
    _management(
        "POST",
        "/projects/{project_id}/custom_prices",
        "setCustomPrices",
        "Set a project's custom prices",
        "Admin",
        description='USD per 1M tokens by `provider/model`: `{"openai/gpt-4o": {"per_input_token": 2.5, ...}}`.',
        access="admin",
        body=Annotated[dict[str, CustomPrice], Field(min_length=1)],
        answer=answers.CustomPricesUpdated,
        errors=(404,),
        scoped=False,
    ),
    _management(
        "GET",
        "/projects/{project_id}/custom_prices",
        "getCustomPrices",
        "Get a project's custom prices",
        "Admin",
        access="admin",
        answer=answers.CustomPricesAnswer,
        errors=(404,),
        scoped=False,
    ),
)

OPENAPI = Route(
    "GET",
    "/openapi.json",
    "getOpenApiDocument",
    "This OpenAPI document",
    "Service",
    description=(
        "The OpenAPI 3.1 document of the gateway's API; it needs no key. Its `servers` entry is the path the "
        "gateway is served under (a mount point or `root_path`). `relaygate openapi` prints the same document."
    ),
    access="public",
    answer=dict[str, Any],
)
