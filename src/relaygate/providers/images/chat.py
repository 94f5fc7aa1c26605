"""Images from chat completions, as OpenRouter makes them: ``modalities: ["image", "text"]``, the images in
``choices[].message.images[]``.

The prompt (and the ``image_url`` to start from) becomes one user message; the size, as an aspect ratio,
``image_config.aspect_ratio``; ``n`` stays ``n``. The answer's images become OpenAI's images answer: a
``data:`` URL as ``b64_json`` (its type as ``output_format``), any other URL as ``url``. An answer without
an image is an error, never an empty list: 400 ``content_policy_violation`` when the model's answer was
filtered, 502 ``no_image`` otherwise. ``steps`` and ``quality`` have no counterpart and are left out.
"""

from __future__ import annotations

import time
from typing import Any

from relaygate.errors import InvalidRequestError, UpstreamError
from relaygate.providers.images.params import ratio_of_request
from relaygate.providers.media import is_data_url, parse_data_url

__all__ = ["chat_images_answer", "chat_images_body"]

JSON = dict[str, Any]


def chat_images_body(body: JSON, model: str) -> JSON:
    prompt = body.get("prompt")
    content: Any = prompt
    image_url = body.get("image_url")
    if isinstance(image_url, str) and image_url:
        content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": image_url}}]
    out: JSON = {"model": model, "messages": [{"role": "user", "content": content}], "modalities": ["image", "text"]}
    if body.get("n") is not None:
        out["n"] = body["n"]
    ratio = ratio_of_request(body)
    if ratio is not None:
        out["image_config"] = {"aspect_ratio": ratio}
    if isinstance(body.get("user"), str):
        out["user"] = body["user"]
    return out


def chat_images_answer(completion: JSON, provider: str) -> JSON:
    data: list[JSON] = []
    formats: set[str] = set()
    texts: list[str] = []
    reasons: set[str] = set()
    for choice in completion.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("finish_reason"), str):
            reasons.add(choice["finish_reason"])
        message = choice.get("message")
        if not isinstance(message, dict):
            message = {}
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        for image in message.get("images") or ():
            url = (image.get("image_url") or {}).get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                continue
            if is_data_url(url):
                mime, encoded = parse_data_url(url, "image_url")
                formats.add(mime.removeprefix("image/"))
                data.append({"b64_json": encoded})
            else:
                data.append({"url": url})
    if not data:
        if "content_filter" in reasons:
            raise InvalidRequestError(
                f"Provider '{provider}' generated no image: the request was refused.",
                param="prompt",
                code="content_policy_violation",
            )
        said = " ".join(texts).strip()
        raise UpstreamError(
            f"Provider '{provider}' answered without an image" + (f": {said[:500]}" if said else "."), code="no_image"
        )
    created = completion.get("created")
    answer: JSON = {"created": created if isinstance(created, int) else int(time.time()), "data": data}
    if len(formats) == 1 and (kind := formats.pop()) in ("png", "jpeg", "webp"):
        answer["output_format"] = kind
    usage = completion.get("usage")
    if isinstance(usage, dict):
        answer["usage"] = _images_usage(usage)
    return answer


def _images_usage(usage: JSON) -> JSON:
    """Chat usage in the Images API's words."""
    prompt = usage.get("prompt_tokens") or 0
    output = usage.get("completion_tokens") or 0
    completion_details = usage.get("completion_tokens_details") or {}
    out: JSON = {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": usage.get("total_tokens") or prompt + output,
    }
    image_tokens = completion_details.get("image_tokens") if isinstance(completion_details, dict) else None
    if isinstance(image_tokens, int):
        out["output_tokens_details"] = {"image_tokens": image_tokens, "text_tokens": max(output - image_tokens, 0)}
    return out
