"""The price catalogue, the layered price book and the cost of calls (relaygate.pricing)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from relaygate.context import Usage
from relaygate.pricing import (
    CatalogueError,
    ImagePrices,
    ModelPrice,
    PriceBook,
    PriceKey,
    cost_of,
    default_catalogue,
    image_cost,
    load_catalogue,
    parse_price_key,
)
from relaygate.providers.anthropic.responses import openai_usage
from relaygate.providers.gemini.responses import usage_of

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "relaygate" / "pricing" / "prices.yaml"


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def price(book: PriceBook, kind: str, model: str) -> ModelPrice:
    found = book.price(kind, model)
    assert found is not None, f"{kind}/{model} has no price"
    return found


# --- the catalogue -------------------------------------------------------------------------------------------

REQUIRED = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "gpt-4.1-mini"),
    ("openai", "gpt-4.1-nano"),
    ("openai", "o3"),
    ("openai", "o4-mini"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("openai", "gpt-5-nano"),
    ("openai", "text-embedding-3-small"),
    ("openai", "text-embedding-3-large"),
    ("openai", "gpt-image-1"),
    ("openai", "dall-e-3"),
    ("anthropic", "claude-opus-4"),
    ("anthropic", "claude-opus-4-1"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-3-5-haiku"),
    ("gemini", "gemini-2.5-pro"),
    ("gemini", "gemini-2.5-flash"),
    ("gemini", "gemini-2.5-flash-lite"),
    ("gemini", "gemini-2.0-flash"),
    ("gemini", "gemini-embedding-001"),
    ("gemini", "gemini-2.5-flash-image"),
]


@pytest.mark.parametrize(("kind", "model"), REQUIRED)
def test_every_required_model_has_its_own_catalogue_entry(book: PriceBook, kind: str, model: str) -> None:
    entry = book.lookup(kind, model)
    assert entry is not None and entry.source == "catalogue"
    assert (entry.provider, entry.model) == (kind, model), "found under its own name, not by a prefix"


@pytest.mark.parametrize(
    ("kind", "model", "expected"),
    [
        # (kind, model): (input, cached_input, cache_write, output) per 1M tokens, as published.
        ("openai", "gpt-4o", ("2.50", "1.25", None, "10.00")),
        ("openai", "gpt-4.1-nano", ("0.10", "0.025", None, "0.40")),
        ("openai", "o4-mini", ("1.10", "0.275", None, "4.40")),
        ("openai", "gpt-5", ("1.25", "0.125", None, "10.00")),
        ("anthropic", "claude-sonnet-4-5", ("3", "0.30", "3.75", "15")),
        ("anthropic", "claude-opus-4-1", ("15", "1.50", "18.75", "75")),
        ("anthropic", "claude-3-5-haiku", ("0.80", "0.08", "1.00", "4")),
        ("gemini", "gemini-2.5-pro", ("1.25", "0.125", None, "10.00")),
        ("gemini", "gemini-2.5-flash", ("0.30", "0.03", None, "2.50")),
        ("gemini", "gemini-embedding-001", ("0.15", None, None, None)),
    ],
)
def test_catalogue_prices_are_exact_decimals(
    book: PriceBook, kind: str, model: str, expected: tuple[str | None, ...]
) -> None:
    found = price(book, kind, model)
    actual = (found.input, found.cached_input, found.cache_write, found.output)
    assert actual == tuple(None if value is None else Decimal(value) for value in expected)


def test_anthropic_cache_write_prices_follow_the_published_multipliers() -> None:
    # 5-minute writes are 1.25x input, 1-hour writes 2x, reads 0.1x: a typo in one row breaks the ratio.
    # Claude 3 Haiku's published cache prices are rounded ($0.30 writes, $0.03 reads on $0.25 input).
    published_exceptions = {"claude-3-haiku"}
    for kind, model, listed in default_catalogue().entries():
        if kind != "anthropic" or model in published_exceptions:
            continue
        assert listed.input is not None, model
        assert listed.cache_write == listed.input * Decimal("1.25"), model
        assert listed.cache_write_1h == listed.input * 2, model
        assert listed.cached_input == listed.input / 10, model


def test_the_shipped_yaml_validates_entirely_through_the_models() -> None:
    raw = yaml.safe_load(SHIPPED.read_text())
    catalogue = load_catalogue(SHIPPED)
    # Nothing dropped on the way: every entry in the file is in the catalogue, validated.
    assert len(catalogue) == sum(len(models) for models in raw.values())
    for kind, model, listed in catalogue.entries():
        assert ModelPrice.model_validate(raw[kind][model]) == listed
    assert len(default_catalogue()) == len(catalogue), "the packaged file is the one in the source tree"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("openai:\n  gpt-broken: {input: -1, output: 2}\n", "openai.gpt-broken.input: Input should be greater"),
        ("openai:\n  gpt-typo: {input: 1, ouptut: 2}\n", "openai.gpt-typo.ouptut: unknown key"),
        ("openai:\n  gpt-text: {input: cheap}\n", "openai.gpt-text.input"),
        ("openai:\n  gpt-out-only: {output: 2}\n", "openai.gpt-out-only: token prices need an input price"),
        ("openai:\n  gpt-empty: {}\n", "openai.gpt-empty: a price needs input"),
        ("openai:\n  GPT-Caps: {input: 1}\n", "openai.GPT-Caps: String should match pattern"),
        ("openia:\n  gpt-4o: {input: 1}\n", "openia: Input should be 'openai', 'anthropic', 'gemini' or 'together'"),
        (
            "openai:\n  img:\n    images: {default_quality: ultra, prices: {low: {'*': 0.01}}}\n",
            "openai.img.images: no price for the default quality 'ultra'",
        ),
        ("openai:\n  gpt-4o: {input: 1}\n  gpt-4o: {input: 2}\n", "duplicate key 'gpt-4o'"),
    ],
)
def test_a_broken_entry_fails_loudly_at_load_with_its_name(tmp_path: Path, entry: str, expected: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(entry)
    with pytest.raises(CatalogueError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


# --- names -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "requested", "listed"),
    [
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "GPT-4o", "gpt-4o"),
        ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
        ("openai", "o4-mini-2025-04-16", "o4-mini"),
        ("openai", "gpt-5-2025-08-07", "gpt-5"),
        ("openai", "gpt-5-pro-2025-10-06", "gpt-5-pro"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("anthropic", "claude-opus-4-0", "claude-opus-4"),
        ("anthropic", "claude-haiku-4.5", "claude-haiku-4-5"),
        ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("anthropic", "claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"),
        ("gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "models/gemini-embedding-001", "gemini-embedding-001"),
        ("gemini", "gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("gemini", "gemini-2.5-flash-lite-preview-09-2025", "gemini-2.5-flash-lite"),
        ("gemini", "gemini-2.5-flash-image-preview", "gemini-2.5-flash-image"),
        # The prefix fallback, where the rest of the name cannot change the price.
        ("openai", "gpt-5-codex", "gpt-5"),
        ("openai", "gpt-5-chat-latest", "gpt-5"),
    ],
)
def test_snapshot_and_alias_names_find_their_model(book: PriceBook, kind: str, requested: str, listed: str) -> None:
    entry = book.lookup(kind, requested)
    assert entry is not None and entry.model == listed


def test_a_snapshot_with_its_own_price_keeps_it(book: PriceBook) -> None:
    assert price(book, "openai", "gpt-4o-2024-05-13").input == Decimal("5.00")
    assert price(book, "openai", "gpt-4o-2024-11-20").input == Decimal("2.50")


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("openai", "llama-3.1-8b-instruct"),
        ("openai", "gpt-4o-realtime-preview-2024-12-17"),  # gpt-4o + realtime: priced on its own
        ("openai", "gpt-4o-mini-tts"),
        ("openai", "o3-deep-research"),
        ("openai", "gpt-5.1-codex-mini"),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123"),  # fine-tunes cost more than their base
        ("anthropic", "claude-sonnet-4-6"),  # another version, not claude-sonnet-4
        ("anthropic", "gpt-4o"),  # the catalogue is per provider kind
        ("gemini", "gemini-2.5-flash-preview-tts"),
        ("gemini", "gemini-2.5-flash-native-audio-preview-09-2025"),
        ("gemini", "gemini-3-pro-preview"),
        ("mock", "echo"),
    ],
)
def test_unknown_models_have_no_price(book: PriceBook, kind: str, model: str) -> None:
    assert book.price(kind, model) is None
    assert cost_of(Usage(prompt_tokens=10, completion_tokens=10), book.price(kind, model)) is None


# --- layers ----------------------------------------------------------------------------------------------------

CONFIG = ModelPrice(input=Decimal(1), output=Decimal(2))
REGISTRY = ModelPrice(input=Decimal(3), output=Decimal(4))
PROJECT = ModelPrice(input=Decimal(5), output=Decimal(6))


def test_layers_config_then_registry_then_project_most_specific_wins() -> None:
    book = PriceBook(overrides={"upstream/gpt-4o": CONFIG})

    def source_and_price(project_id: str | None = "proj-a") -> tuple[str, ModelPrice] | None:
        entry = book.lookup("openai", "gpt-4o", provider_name="upstream", project_id=project_id)
        return (entry.source, entry.price) if entry is not None else None

    assert source_and_price() == ("config", CONFIG)

    book.register("upstream/gpt-4o", REGISTRY)
    assert source_and_price() == ("registry", REGISTRY)

    assert book.set_project_prices("proj-a", {"upstream/gpt-4o": PROJECT}) == ["upstream/gpt-4o"]
    assert source_and_price() == ("project", PROJECT)
    assert book.price("openai", "gpt-4o", provider_name="upstream", project_id="proj-a") == PROJECT

    # Another project, or no project, still sees the registry's price: custom prices do not leak.
    assert source_and_price("proj-b") == ("registry", REGISTRY)
    assert source_and_price(None) == ("registry", REGISTRY)

    book.clear_project_prices("proj-a")
    assert source_and_price() == ("registry", REGISTRY)
    book.set_registered({})
    assert source_and_price() == ("config", CONFIG)
    assert PriceBook().lookup("openai", "gpt-4o", provider_name="upstream", project_id="proj-a") == (
        PriceBook().lookup("openai", "gpt-4o")
    ), "with no overrides the catalogue answers"


def test_override_keys_name_a_provider_or_a_kind_and_normalise_like_the_catalogue() -> None:
    book = PriceBook(overrides={"openai/gpt-4o": CONFIG, "local/llama-3.1-8b": ModelPrice(input=Decimal(0))})
    # The kind prices the model on every provider of that kind; the provider's own name comes first.
    assert book.price("openai", "gpt-4o-2024-08-06", provider_name="azure") == CONFIG
    book.register("azure/gpt-4o", REGISTRY)
    assert book.price("openai", "gpt-4o", provider_name="azure") == REGISTRY
    assert book.price("openai", "gpt-4o", provider_name="other") == CONFIG  # registry has only azure's
    # A model the catalogue lacks, priced by the config: free is a price, not an unknown.
    assert cost_of(Usage(prompt_tokens=100), book.price("openai", "llama-3.1-8b", provider_name="local")) == 0.0
    # Without an override, the catalogue answers for the kind whatever the provider's name.
    assert book.price("openai", "gpt-4.1", provider_name="azure") == price(book, "openai", "gpt-4.1")


def test_project_prices_are_merged_per_model() -> None:
    book = PriceBook()
    book.set_project_prices("proj-a", {"bedrock/pegasus-1-2": PROJECT})
    book.set_project_prices("proj-a", {"bedrock/titan-text": CONFIG})
    assert book.price("openai", "pegasus-1-2", provider_name="bedrock", project_id="proj-a") == PROJECT
    assert book.price("openai", "titan-text", provider_name="bedrock", project_id="proj-a") == CONFIG


def test_catalogue_entries_list_each_model_once_with_the_winning_layer() -> None:
    book = PriceBook(overrides={"openai/gpt-4o": CONFIG, "upstream/my-model": CONFIG})
    book.register("upstream/my-model", REGISTRY)
    book.set_project_prices("proj-a", {"openai/gpt-4o": PROJECT})

    listed = {(entry.provider, entry.model): entry for entry in book.catalogue_entries()}
    assert len(listed) == len(default_catalogue()) + 1  # gpt-4o replaced, my-model added
    assert (listed["openai", "gpt-4o"].source, listed["openai", "gpt-4o"].price) == ("config", CONFIG)
    assert listed["upstream", "my-model"].source == "registry"
    assert listed["anthropic", "claude-sonnet-4-5"].source == "catalogue"
    with_project = {(e.provider, e.model): e for e in book.catalogue_entries(project_id="proj-a")}
    assert with_project["openai", "gpt-4o"].price == PROJECT

    entries = book.catalogue_entries()
    assert [(e.provider, e.model) for e in entries] == sorted((e.provider, e.model) for e in entries)
    as_json = listed["anthropic", "claude-3-5-haiku"].model_dump(mode="json")
    assert as_json["price"]["cached_input"] == 0.08, "JSON shows numbers, not decimal strings"


def test_price_keys_must_be_provider_slash_model() -> None:
    assert parse_price_key("openrouter/meta-llama/llama-3.1-8b") == ("openrouter", "meta-llama/llama-3.1-8b")
    for bad in ("gpt-4o", "/gpt-4o", "openai/", "open ai/gpt-4o"):
        with pytest.raises(ValueError):
            parse_price_key(bad)
        with pytest.raises(ValueError):
            PriceBook().register(bad, CONFIG)
    # The shape the config's `prices:` mapping will have.
    config = TypeAdapter(dict[PriceKey, ModelPrice])
    parsed = config.validate_python({"upstream/gpt-4o": {"input": 2.5, "cached_input": 1.25, "output": 10}})
    assert parsed["upstream/gpt-4o"].cached_input == Decimal("1.25")
    with pytest.raises(ValidationError):
        config.validate_python({"gpt-4o": {"input": 1}})


def test_per_token_prices_convert_to_per_million() -> None:
    # LangDB's /admin/models takes USD per token: 0.00001 is $10 per 1M tokens.
    assert ModelPrice.per_token(0.00001, 0.00003) == ModelPrice(input=Decimal(10), output=Decimal(30))


# --- cost ------------------------------------------------------------------------------------------------------


def test_cost_of_a_plain_openai_call(book: PriceBook) -> None:
    usage = Usage.from_openai({"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500})
    # gpt-4o: 1000 x $2.50/M + 500 x $10/M = 0.0025 + 0.005
    assert cost_of(usage, price(book, "openai", "gpt-4o")) == 0.0075


def test_cost_of_an_openai_call_with_cached_tokens(book: PriceBook) -> None:
    usage = Usage.from_openai(
        {"prompt_tokens": 10_000, "completion_tokens": 200, "prompt_tokens_details": {"cached_tokens": 8_000}}
    )
    # gpt-4o-mini: 2000 uncached x 0.15 + 8000 cached x 0.075 + 200 x 0.60 = 300 + 600 + 120 = 1020 per 1M
    assert cost_of(usage, price(book, "openai", "gpt-4o-mini")) == 0.00102


def test_cost_of_an_anthropic_call_with_cache_reads_and_writes(book: PriceBook) -> None:
    # Anthropic's own usage, mapped by the adapter: prompt_tokens = input + cache reads + cache writes.
    anthropic = {
        "input_tokens": 100,
        "cache_read_input_tokens": 20_000,
        "cache_creation_input_tokens": 5_000,
        "output_tokens": 400,
    }
    usage = Usage.from_openai(openai_usage(anthropic))
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens) == (25_100, 20_000, 5_000)
    # claude-sonnet-4-5: 100 x 3 + 20000 x 0.30 + 5000 x 3.75 + 400 x 15 = 300 + 6000 + 18750 + 6000 per 1M
    assert cost_of(usage, price(book, "anthropic", "claude-sonnet-4-5-20250929")) == 0.03105


def test_reasoning_tokens_are_billed_once_as_output(book: PriceBook) -> None:
    usage = Usage.from_openai(
        {"prompt_tokens": 1000, "completion_tokens": 3000, "completion_tokens_details": {"reasoning_tokens": 2500}}
    )
    # o4-mini: 1000 x 1.10 + 3000 x 4.40 = 14300 per 1M; billing the 2500 again would give 0.0253.
    assert cost_of(usage, price(book, "openai", "o4-mini")) == 0.0143
    # Gemini's thoughts arrive in completion_tokens through the adapter, and are billed once too.
    gemini = Usage.from_openai(
        usage_of({"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 800})
    )
    assert (gemini.completion_tokens, gemini.reasoning_tokens) == (1000, 800)
    # gemini-2.5-flash: 1000 x 0.30 + 1000 x 2.50 = 2800 per 1M
    assert cost_of(gemini, price(book, "gemini", "gemini-2.5-flash")) == 0.0028


def test_cost_of_embeddings_is_input_only(book: PriceBook) -> None:
    usage = Usage.from_openai({"prompt_tokens": 1_000_000, "total_tokens": 1_000_000})
    assert cost_of(usage, price(book, "openai", "text-embedding-3-small")) == 0.02
    assert cost_of(Usage(prompt_tokens=2000), price(book, "gemini", "gemini-embedding-001")) == 0.0003
    # Output tokens against an input-only price cannot be priced: unknown, not free.
    assert (
        cost_of(Usage(prompt_tokens=10, completion_tokens=5), price(book, "openai", "text-embedding-3-small")) is None
    )


def test_missing_cached_and_cache_write_prices_fall_back_to_input(book: PriceBook) -> None:
    usage = Usage(prompt_tokens=1000, cached_tokens=400, cache_write_tokens=100, completion_tokens=10)
    plain = ModelPrice(input=Decimal(2), output=Decimal(8))
    # (500 + 400 + 100) x 2 + 10 x 8 = 2080 per 1M
    assert cost_of(usage, plain) == 0.00208
    # gpt-5-pro lists no cached rate: 1000 x 15 + 10 x 120 = 16200 per 1M
    assert cost_of(usage, price(book, "openai", "gpt-5-pro")) == 0.0162
    # A cached price of zero is a price: the reads are free, they do not fall back to input.
    free_reads = ModelPrice(input=Decimal(2), cached_input=Decimal(0), output=Decimal(8))
    assert cost_of(usage, free_reads) == 0.00128  # (500 + 100) x 2 + 10 x 8


def test_cost_is_rounded_to_a_nano_dollar() -> None:
    assert cost_of(Usage(prompt_tokens=1, cached_tokens=1), price(PriceBook(), "openai", "gpt-5-nano")) == 5e-9
    assert cost_of(Usage(prompt_tokens=1), ModelPrice(input=Decimal("0.0004"))) == 0.0
    # Half to even, once, at the end: 1.5e-9 -> 2e-9 and 2.5e-9 -> 2e-9.
    assert cost_of(Usage(prompt_tokens=1), ModelPrice(input=Decimal("0.0015"))) == 2e-9
    assert cost_of(Usage(prompt_tokens=1), ModelPrice(input=Decimal("0.0025"))) == 2e-9
    assert cost_of(Usage(prompt_tokens=3), ModelPrice(input=Decimal("0.0005"))) == 2e-9  # not 3 x 0
    assert cost_of(None, ModelPrice(input=Decimal(1))) is None


@pytest.mark.parametrize(
    ("model", "size", "quality", "expected"),
    [
        ("gpt-image-1", "1024x1536", "high", 0.75),  # 3 x 0.25
        ("gpt-image-1", "1024x1024", "medium", 0.126),  # 3 x 0.042
        ("gpt-image-1", "1536x1024", "LOW", 0.048),  # 3 x 0.016
        ("gpt-image-1", "auto", "auto", 0.75),  # left to the model: the dearest
        ("dall-e-3", "1792x1024", "hd", 0.36),  # 3 x 0.12
        ("dall-e-3", None, None, 0.12),  # the API's defaults: standard 1024x1024, 3 x 0.04
        ("dall-e-2", "512x512", None, 0.054),  # 3 x 0.018
        ("gpt-image-1", "1024x1024", "hd", None),  # not a quality of this model
        ("gpt-image-1", "4096x4096", "high", None),  # not a size of this model
        ("gpt-4o", "1024x1024", "high", None),  # no image prices
    ],
)
def test_image_cost_by_quality_and_size(
    book: PriceBook, model: str, size: str | None, quality: str | None, expected: float | None
) -> None:
    assert image_cost(price(book, "openai", model), 3, size=size, quality=quality) == expected


def test_gemini_images_have_one_price_whatever_the_size(book: PriceBook) -> None:
    flash_image = price(book, "gemini", "gemini-2.5-flash-image")
    assert image_cost(flash_image, 3, size="1792x1024", quality="hd") == 0.117
    assert image_cost(flash_image, 0) == 0.0
    assert image_cost(None, 3) is None
    with pytest.raises(ValueError):
        image_cost(flash_image, -1)


def test_image_price_tables_match_any_quality_or_size_with_a_star() -> None:
    table: dict[str, Any] = {"prices": {"*": {"1024x1024": 0.01, "*": 0.02}, "hd": {"1024x1024": 0.05}}}
    images = ImagePrices.model_validate(table)
    assert images.price_for("standard", "1024x1024") == Decimal("0.01")
    assert images.price_for("standard", "512x512") == Decimal("0.02")
    assert images.price_for("HD", "1024x1024") == Decimal("0.05")
    assert images.price_for("hd", "512x512") is None, "a listed quality does not borrow another quality's sizes"
