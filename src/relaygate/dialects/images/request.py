"""Langbase's image request (``POST /v1/images``) as the canonical images call.

The caller names the model ``provider:model`` (``openai:gpt-image-1``,
``together:black-forest-labs/FLUX.1-schnell-Free``), or ``provider/model`` as the rest of relaygate does;
``prompt``, ``width``, ``height``, ``n``, ``steps`` and ``image_url`` (image-to-image) are checked here and
go into the body of ``/v1/images/generations`` as they are: each provider's adapter maps them to what it
takes (OpenAI's ``size``, Gemini's aspect ratio, Together's own fields). OpenAI's ``size``, ``quality`` and
the other fields a caller may add pass through for the adapter to forward.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from relaygate.errors import InvalidRequestError, ModelNotFoundError
from relaygate.settings import known_provider

__all__ = ["MAX_DIMENSION", "MAX_IMAGES", "MAX_STEPS", "canonical_request", "split_model"]

JSON = dict[str, Any]

MAX_IMAGES = 10
MAX_STEPS = 1000
MAX_DIMENSION = 16384


def canonical_request(request: JSON, providers: Collection[str] = ()) -> JSON:
    """The ``/v1/images/generations`` body for a Langbase images request; a 400 naming the field for bad input.
    ``providers`` are the configured providers' names (``provider:model`` is read with them)."""
    prompt = request.get("prompt")
    if prompt is None:
        raise _missing("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("prompt", "a non-empty string describing the image")
    model = request.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("model", "a model named provider:model, e.g. openai:gpt-image-1")
    if request.get("stream") not in (None, False):
        raise InvalidRequestError(
            "The images API answers whole; 'stream' is not supported.", param="stream", code="unsupported_parameter"
        )
    width, height = _integer(request, "width", MAX_DIMENSION), _integer(request, "height", MAX_DIMENSION)
    if (width is None) != (height is None):
        missing = "height" if height is None else "width"
        raise InvalidRequestError(
            f"Give both 'width' and 'height', or neither; '{missing}' is missing.",
            param=missing,
            code="missing_required_parameter",
        )
    _integer(request, "n", MAX_IMAGES)
    _integer(request, "steps", MAX_STEPS)
    if request.get("size") is not None and not isinstance(request["size"], str):
        raise _invalid("size", "a size such as '1024x1024'")
    image_url = request.get("image_url")
    if image_url is not None:
        _check_image_url(image_url)
    body = {key: value for key, value in request.items() if key not in ("model", "stream")}
    body["model"] = canonical_model(model.strip(), providers)
    return body


def canonical_model(model: str, providers: Collection[str] = ()) -> str:
    """``provider/model`` for ``provider:model`` when ``provider`` names one (configured, the mock or a preset);
    a name without ``:`` stays as it is (``provider/model``, or a model of the default provider). Langbase's
    API names models ``provider:model``: a prefix that names no provider is a 404 naming it, never a model
    of the default provider (a default provider's model with a tag is ``provider/llama3:8b``)."""
    prefix, colon, rest = model.partition(":")
    if colon and prefix and rest and "/" not in prefix:
        if not known_provider(prefix, providers):
            raise ModelNotFoundError(
                f"The model '{model}' does not exist: no provider is named '{prefix}'. Name models as "
                f"provider:model; the providers are: {', '.join(sorted({*providers, 'mock'}))}.",
                param="model",
            )
        return f"{prefix}/{rest}"
    return model


def split_model(model: str) -> tuple[str | None, str]:
    """The provider prefix and the model of a canonical model name (``None``: no prefix)."""
    prefix, slash, rest = model.partition("/")
    return (prefix, rest) if slash else (None, model)


def _check_image_url(image_url: Any) -> None:
    if not isinstance(image_url, str) or not image_url.strip():
        raise _invalid("image_url", "an http(s) URL or a data: URL of the image to start from")
    if image_url[:5].lower() == "data:":
        if "," not in image_url:
            raise _invalid("image_url", "a data: URL needs a ',' before its data")
        return
    parts = urlsplit(image_url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise _invalid("image_url", "an http(s) URL or a data: URL of the image to start from")


def _integer(request: JSON, name: str, maximum: int) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
        request[name] = value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise _invalid(name, f"an integer from 1 to {maximum}")
    return value


def _missing(name: str) -> InvalidRequestError:
    return InvalidRequestError(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")


def _invalid(name: str, expected: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{name}': expected {expected}.", param=name, code="invalid_value")
