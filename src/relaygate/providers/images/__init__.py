"""How an OpenAI-compatible provider makes images: its ``images_api`` (see
:data:`relaygate.settings.presets.ImagesApi`).

- ``openai`` (the default): OpenAI's Images API (:mod:`.openai`): ``size`` from ``width`` and ``height``
  (a size the model cannot make is a 400), ``/images/edits`` with an uploaded image for ``image_url``;
- ``together``: Together's ``/images/generations`` (:mod:`.together`): ``width``, ``height``, ``steps`` and
  ``image_url`` as they are;
- ``chat``: chat completions answering with images, as OpenRouter's (:mod:`.chat`).

Every way answers in OpenAI's images shape (``data[].url`` or ``data[].b64_json``, ``usage``), so that the
rest of the gateway sees one images answer whatever made it. The size a request asks for is read by
:mod:`.params`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from relaygate.providers.images.chat import chat_images_answer, chat_images_body
from relaygate.providers.images.openai import edits_form, generations_body
from relaygate.providers.images.together import together_body

if TYPE_CHECKING:
    from relaygate.providers.base import Provider
    from relaygate.upstream import UpstreamResponse

__all__ = ["images_answer", "open_images"]

JSON = dict[str, Any]


async def open_images(provider: Provider, body: JSON, model: str) -> UpstreamResponse:
    """Send an image request the provider's way (its ``images_api``)."""
    way = provider.settings.images_api or "openai"
    if way == "together":
        return await provider.post(provider.base_url + "/images/generations", together_body(body, model))
    if way == "chat":
        return await provider.post(provider.base_url + "/chat/completions", chat_images_body(body, model))
    if body.get("image_url") is not None:
        form, content_type = await edits_form(body, model, provider.client, provider.name)
        return await provider.post_bytes(
            provider.base_url + "/images/edits", form, headers={"content-type": content_type}
        )
    return await provider.post(provider.base_url + "/images/generations", generations_body(body, model))


def images_answer(provider: Provider, answer: JSON) -> JSON | None:
    """OpenAI's images answer for the provider's answer; ``None`` when it is that already."""
    if (provider.settings.images_api or "openai") == "chat":
        return chat_images_answer(answer, provider.name)
    return None
