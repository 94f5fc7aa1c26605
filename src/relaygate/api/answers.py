"""The shapes of the management API's answers, as the seeds name their fields.

:mod:`relaygate.api.views` and the handlers of :class:`~relaygate.api.ApiApp` build their JSON as these
TypedDicts, so mypy holds the code to them, and the OpenAPI document's schemas are generated from them
(pydantic reads TypedDicts): the documentation cannot drift from what the routes answer.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict

__all__ = [
    "AnalyticsAnswer",
    "AnalyticsRow",
    "CustomPricesAnswer",
    "CustomPricesUpdated",
    "FigureFields",
    "MessageView",
    "Pagination",
    "PriceEntryView",
    "PriceList",
    "PriceView",
    "RegisteredModel",
    "RegisteredModelList",
    "SummaryAnswer",
    "SummaryRow",
    "ThreadCostAnswer",
    "ThreadList",
    "ThreadMessagesAnswer",
    "ThreadView",
    "UsageModelRow",
    "UsageModelsAnswer",
    "UsageTotalAnswer",
    "Window",
]


class FigureFields(TypedDict):
    """Aggregates over a set of calls: cost in USD, tokens, and averages (``null`` with nothing to average).

    ``total_cost`` sums the calls with a known price; it is ``null`` when no call that answered had one (never
    a guessed 0), and ``unpriced_requests`` says how many calls answered without a price."""

    total_cost: float | None
    unpriced_requests: int
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    avg_latency_ms: float | None
    avg_ttft_ms: float | None


class Window(TypedDict):
    """The window the figures cover: ``[start_time_us, end_time_us)`` in microseconds since the epoch."""

    start_time_us: int
    end_time_us: int


class Pagination(TypedDict):
    limit: int
    offset: int
    total: int


class ThreadView(TypedDict):
    id: str
    title: str | None
    created_at: str
    updated_at: str
    requests: int
    message_count: int
    total_cost: float | None
    unpriced_requests: int


class ThreadList(TypedDict):
    threads: list[ThreadView]
    pagination: Pagination


class MessageView(TypedDict):
    id: str
    role: str
    content: Any
    tool_calls: NotRequired[list[Any]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]
    created_at: str
    model: str | None
    cost: float | None
    request_id: str | None


class ThreadMessagesAnswer(TypedDict):
    thread_id: str
    messages: list[MessageView]
    pagination: Pagination


class ThreadCostAnswer(FigureFields):
    thread_id: str


class AnalyticsRow(FigureFields):
    timestamp: str
    timestamp_us: int
    cost: float | None


class AnalyticsAnswer(Window):
    min_unit: str
    rows: list[AnalyticsRow]


class SummaryRow(FigureFields, total=False):
    """One group's figures, with the value of each dimension grouped by (``provider``, ``model``, ...)."""

    provider: str | None
    model: str | None
    user: str | None
    label: str | None
    tag: str | None


class SummaryAnswer(Window, FigureFields):
    total_requests: int
    groupBy: list[str]
    summary: list[SummaryRow]


class UsageTotalAnswer(Window, FigureFields):
    pass


class UsageModelRow(FigureFields):
    model: str
    provider: str
    timestamp: NotRequired[str]
    timestamp_us: NotRequired[int]


class UsageModelsAnswer(Window):
    min_unit: str | None
    models: list[UsageModelRow]


class PriceView(TypedDict):
    """USD per 1M tokens (and per image, by quality and size)."""

    input_price: float | None
    output_price: float | None
    cached_input_price: float | None
    cache_write_price: float | None
    # Image models: USD per 1M image tokens in and out (gpt-image-1), per megapixel, per image.
    image_input_price: NotRequired[float | None]
    image_output_price: NotRequired[float | None]
    mp_price: NotRequired[float | None]
    image_prices: NotRequired[dict[str, dict[str, float]]]


class PriceEntryView(PriceView):
    model: str
    provider: str
    model_name: str
    source: str
    unit: str


class PriceList(TypedDict):
    object: Literal["list"]
    data: list[PriceEntryView]


class RegisteredModel(TypedDict):
    """A model in the registry, in the seeds' ``Model`` shape: token prices are USD per token, as strings."""

    id: str
    model_name: str
    description: str
    provider_info_id: str
    project_id: str | None
    public: bool
    model_type: str
    input_token_price: str | None
    output_token_price: str | None
    context_size: int | None
    capabilities: list[str]
    input_types: list[str]
    output_types: list[str]
    tags: list[str]
    type_prices: dict[str, float] | None
    mp_price: float | None
    model_name_in_provider: str
    owner_name: str
    priority: int
    parameters: dict[str, Any]


class RegisteredModelList(TypedDict):
    object: Literal["list"]
    data: list[RegisteredModel]


class CustomPricesUpdated(TypedDict):
    success: bool
    message: str
    updated_models: list[str]


class CustomPricesAnswer(TypedDict):
    project_id: str
    prices: dict[str, PriceView]
