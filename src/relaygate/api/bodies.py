"""Request bodies of the management API, as the seeds spell them, and the time window they select.

The LangDB documents give two spellings of a window: ``period`` with ``start_time_us``/``end_time_us``
(the API reference) and ``interval`` with ISO ``start_time``/``end_time`` (the OpenAPI file); both are
accepted, as are ``groupBy`` and ``group_by``. A bad field is a 400 naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from relaygate.errors import InvalidRequestError
from relaygate.ledger.prices import model_price
from relaygate.pricing import ModelPrice
from relaygate.store import Bucket, GroupBy, ModelPrices

__all__ = [
    "AnalyticsRequest",
    "CustomPrice",
    "ModelCreateRequest",
    "SummaryRequest",
    "ThreadsRequest",
    "UsageModelsRequest",
    "WindowRequest",
    "missing_fields",
]

Period = Literal["last_hour", "last_day", "last_week", "last_month", "last_year"]
PERIODS: dict[str, timedelta] = {
    "last_hour": timedelta(hours=1),
    "last_day": timedelta(days=1),
    "last_week": timedelta(days=7),
    "last_month": timedelta(days=30),
    "last_year": timedelta(days=365),
}
DEFAULT_PERIOD = "last_month"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since the epoch, up to year 9999.
TimeUs = Annotated[int, Field(ge=0, le=253_402_300_799_999_999)]
LATEST = EPOCH + timedelta(microseconds=253_402_300_799_999_999)
# Beyond any table a gateway keeps, and inside every database's 64-bit integers.
MAX_OFFSET = 1_000_000_000
# USD per token: a dollar a token is far above any model's price, and keeps every call's cost countable.
MAX_PRICE_PER_TOKEN = 1.0
Price = Annotated[float, Field(ge=0, le=MAX_PRICE_PER_TOKEN, allow_inf_nan=False)]
PricePerMillion = Annotated[float, Field(ge=0, le=MAX_PRICE_PER_TOKEN * 1_000_000, allow_inf_nan=False)]
ImagePrice = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
TypePrices = dict[str, ImagePrice | dict[str, ImagePrice]]


class _Body(BaseModel):
    # Fields the gateway does not know are ignored, as clients of the hosted API may send more.
    model_config = ConfigDict(extra="ignore", strict=False, populate_by_name=True)


class WindowRequest(_Body):
    period: Period | None = Field(None, validation_alias=AliasChoices("period", "interval"))
    start_time_us: TimeUs | None = None
    end_time_us: TimeUs | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """``[start, end)``: the period back from now, else the given times (a missing end is now)."""
        now = now or datetime.now(UTC)
        if self.period is not None:
            return now - PERIODS[self.period], now
        start = _at(self.start_time_us, self.start_time, "start_time_us")
        end = _at(self.end_time_us, self.end_time, "end_time_us") or now
        if start is None:
            start = max(end - PERIODS[DEFAULT_PERIOD], EPOCH) if end >= EPOCH else EPOCH
        if start >= end:
            raise InvalidRequestError(
                "The window is empty: start_time_us must be before end_time_us.",
                param="start_time_us",
                code="invalid_value",
            )
        return start, end


class SummaryRequest(WindowRequest):
    group_by: list[GroupBy] = Field(
        default_factory=list, validation_alias=AliasChoices("groupBy", "group_by"), max_length=3
    )

    @field_validator("group_by")
    @classmethod
    def _distinct(cls, value: list[GroupBy]) -> list[GroupBy]:
        if len(set(value)) != len(value):
            raise ValueError("each dimension may be named once")
        return value


class UsageModelsRequest(WindowRequest):
    min_unit: Bucket | None = Field(None, validation_alias=AliasChoices("min_unit", "granularity"))


class AnalyticsRequest(UsageModelsRequest, SummaryRequest):
    """``POST /analytics``: buckets of ``min_unit``, each split by ``group_by`` as ``/analytics/summary`` splits."""


# Seed 003's ModelCreateRequest.required, with the other names a field is accepted under.
REQUIRED_MODEL_FIELDS: dict[str, tuple[str, ...]] = {
    "model_name": ("model_name",),
    "description": ("description",),
    "provider_info_id": ("provider_info_id", "provider"),
    "project_id": ("project_id",),
    "model_type": ("model_type",),
    "owner_name": ("owner_name",),
    "priority": ("priority",),
}


def missing_fields(body: dict[str, Any]) -> None:
    """Raise a 400 naming every field seed 003 requires of ``POST /admin/models`` that ``body`` lacks."""
    missing = [name for name, names in REQUIRED_MODEL_FIELDS.items() if not any(n in body for n in names)]
    if missing:
        quoted = ", ".join(f"'{name}'" for name in missing)
        plural = "s" if len(missing) > 1 else ""
        raise InvalidRequestError(
            f"Missing required parameter{plural}: {quoted}. Seed 003's ModelCreateRequest requires "
            f"{', '.join(REQUIRED_MODEL_FIELDS)} (project_id may be null: a model of every project).",
            param=missing[0],
            code="missing_required_parameter",
        )


class ThreadsRequest(_Body):
    limit: int = Field(20, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ModelCreateRequest(_Body):
    """``POST /admin/models``. ``provider_info_id`` names one of the gateway's providers (by name).

    Seed 003 requires ``model_name``, ``description``, ``provider_info_id``, ``project_id``, ``model_type``,
    ``owner_name`` and ``priority``: a request missing any is a 400 naming each one (:func:`missing_fields`).
    ``project_id`` may be ``null``: a model of every project.
    """

    model_name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@\-/]*$")
    description: str = Field(max_length=4000)
    provider_info_id: str = Field(
        min_length=1, max_length=128, validation_alias=AliasChoices("provider_info_id", "provider")
    )
    project_id: str | None
    public: bool = False
    # How the provider's requests and answers map to the API ("openai-compatible"): stored and returned.
    request_response_mapping: str | None = Field(None, max_length=200)
    model_type: str = Field(min_length=1, max_length=64)
    # USD per token, as LangDB's registry takes them.
    input_token_price: Price | None = None
    output_token_price: Price | None = None
    context_size: int | None = Field(None, ge=1)
    capabilities: list[str] = Field(default_factory=list)
    input_types: list[str] = Field(default_factory=list)
    output_types: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    # USD per image, by "quality/size", "size", "quality" or "*" (or nested, {quality: {size: usd}}).
    type_prices: TypePrices | None = None
    # USD per megapixel (1024 x 1024 pixels) of generated image.
    mp_price: ImagePrice | None = None
    owner_name: str = Field(max_length=200)
    priority: int = Field(ge=-1_000_000, le=1_000_000)
    model_name_in_provider: str | None = Field(None, min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)

    def price(self) -> ModelPrice | None:
        """The model's token price, or ``None`` when the request gives none (image prices: :meth:`per_image`)."""
        if self.input_token_price is None:
            if self.output_token_price is not None:
                raise InvalidRequestError(
                    "output_token_price needs input_token_price.", param="input_token_price", code="invalid_value"
                )
            return None
        return ModelPrice.per_token(self.input_token_price, self.output_token_price)

    def per_image(self) -> dict[str, float] | None:
        return flat_type_prices(self.type_prices)


class CustomPrice(_Body):
    """One model's custom price in ``POST /projects/{id}/custom_prices``: USD per 1M tokens, as LangDB's
    ``per_input_token``/``per_output_token`` are (its example of 1.23 is a per-million figure). An image
    model may be priced by ``type_prices`` (per image) or ``mp_price`` (per megapixel) instead, or as well."""

    per_input_token: PricePerMillion | None = None
    per_output_token: PricePerMillion | None = None
    per_cached_input_token: PricePerMillion | None = None
    per_cached_input_write_token: PricePerMillion | None = None
    type_prices: TypePrices | None = None
    mp_price: ImagePrice | None = None

    def price(self) -> ModelPrice:
        images = self.type_prices is not None or self.mp_price is not None
        for name in ("per_input_token", "per_output_token"):
            if getattr(self, name) is None and not images:
                raise InvalidRequestError(
                    f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
                )
        if self.per_input_token is None and (
            self.per_output_token is not None or self.per_cached_input_token is not None
        ):
            raise InvalidRequestError(
                "Token prices need per_input_token.", param="per_input_token", code="invalid_value"
            )
        return ModelPrice.model_validate(
            {
                "input": _text(self.per_input_token),
                "output": _text(self.per_output_token),
                "cached_input": _text(self.per_cached_input_token),
                "cache_write": _text(self.per_cached_input_write_token),
                "images": image_prices(flat_type_prices(self.type_prices)),
                "mp_price": _text(self.mp_price),
            }
        )


def flat_type_prices(prices: TypePrices | None) -> dict[str, float] | None:
    """``type_prices`` keyed ``quality/size`` (or one of the two), however they were written."""
    if prices is None:
        return None
    flat: dict[str, float] = {}
    for key, value in prices.items():
        if isinstance(value, dict):
            flat.update({f"{key}/{size}": usd for size, usd in value.items()})
        else:
            flat[key] = value
    return flat or None


def image_prices(per_image: dict[str, float] | None) -> Any:
    """The per-image table of ``per_image`` as :class:`~relaygate.pricing.ModelPrice` takes it."""
    if not per_image:
        return None
    # The store's reading of the keys is the one rule for them (relaygate.ledger.prices).
    price = model_price(ModelPrices(per_image=per_image))
    return price.images if price is not None else None


def _text(value: float | None) -> str | None:
    # str() first so a float such as 1e-05 becomes Decimal("0.00001"), not its binary approximation.
    return None if value is None else str(value)


def _at(us: int | None, when: datetime | None, param: str) -> datetime | None:
    if us is not None:
        return EPOCH + timedelta(microseconds=us)
    if when is None:
        return None
    name = param.removesuffix("_us")
    if when.tzinfo is None:
        raise InvalidRequestError(
            f"{name} must carry a time zone (e.g. 2025-01-01T00:00:00Z).", param=name, code="invalid_value"
        )
    try:
        utc = when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 lies past the last datetime Python has
        utc = None
    if utc is None or not EPOCH <= utc <= LATEST:
        raise InvalidRequestError(
            f"{name} must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z.", param=name, code="invalid_value"
        )
    return utc
