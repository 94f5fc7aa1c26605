"""OpenAI's Images API: generations as JSON, image-to-image through ``/images/edits`` as a multipart form.

``width`` and ``height`` become ``size`` (``"1536x1024"``). OpenAI's models make a few sizes each
(:data:`MODEL_SIZES`): a size the model cannot make is a 400 naming the field the caller wrote, before
anything is sent; another server's model (an OpenAI-compatible images server) gets whatever size was asked.
``steps`` has no OpenAI counterpart and is left out. An ``image_url`` (a ``data:`` URL, or an http(s) URL
the gateway fetches: :mod:`.fetch`) is uploaded to ``/images/edits`` as the ``image`` file, with the other
fields as form fields.
"""

from __future__ import annotations

import uuid
from typing import Any

from relaygate.providers.images.fetch import InputImage, input_image
from relaygate.providers.images.params import requested_size
from relaygate.providers.params import invalid_value
from relaygate.requests import GATEWAY_FIELDS
from relaygate.upstream import UpstreamClient

__all__ = ["MODEL_SIZES", "edits_form", "generations_body", "openai_size"]

JSON = dict[str, Any]

# Fields of the canonical images request that are not OpenAI's: mapped (width, height, image_url) or
# without a counterpart (steps).
NOT_OPENAI = frozenset({"width", "height", "steps", "image_url"})
GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536")
# The sizes each OpenAI image model makes, by the start of its name (snapshots share their model's).
MODEL_SIZES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gpt-image", GPT_IMAGE_SIZES),
    ("chatgpt-image", GPT_IMAGE_SIZES),
    ("dall-e-3", ("1024x1024", "1792x1024", "1024x1792")),
    ("dall-e-2", ("256x256", "512x512", "1024x1024")),
)


def openai_size(body: JSON, model: str) -> str | None:
    """The ``size`` to send: the request's ``width`` x ``height`` or ``size``; ``None`` when it asks none.
    A size the model cannot make is a 400."""
    size, param = requested_size(body)
    if size is None:
        return "auto" if body.get("size") == "auto" else None
    label = f"{size[0]}x{size[1]}"
    allowed = next((sizes for prefix, sizes in MODEL_SIZES if model.lower().startswith(prefix)), None)
    if allowed is not None and label not in allowed:
        asked = f"width {size[0]} and height {size[1]}" if param == "width" else f"size {label}"
        raise invalid_value(
            f"{model} cannot make images of {asked}; it makes {', '.join(allowed)}"
            + (" (or auto)." if allowed is GPT_IMAGE_SIZES else "."),
            param,
        )
    return label


def generations_body(body: JSON, model: str) -> JSON:
    """The ``/images/generations`` body for the canonical request."""
    out = {key: value for key, value in body.items() if key not in GATEWAY_FIELDS and key not in NOT_OPENAI}
    out.pop("size", None)
    out["model"] = model
    size = openai_size(body, model)
    if size is not None:
        out["size"] = size
    return out


async def edits_form(body: JSON, model: str, client: UpstreamClient, provider: str) -> tuple[bytes, str]:
    """The ``/images/edits`` multipart form for a request with an ``image_url``, and its content type."""
    image = await input_image(body["image_url"], client, provider)
    fields = generations_body(body, model)
    boundary = "relaygate-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        if value is None:
            continue
        parts.append(_field(boundary, name, _form_value(name, value)))
    parts.append(_file(boundary, "image", image))
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _form_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise invalid_value(f"'{name}' cannot go with an image_url: image edits take only text and number fields.", name)


def _field(boundary: str, name: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
    )


def _file(boundary: str, name: str, image: InputImage) -> bytes:
    extension = image.mime_type.removeprefix("image/").replace("jpeg", "jpg")
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="image.{extension}"\r\n'
        f"Content-Type: {image.mime_type}\r\n\r\n"
    )
    return head.encode() + image.data + b"\r\n"


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
