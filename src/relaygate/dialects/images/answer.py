"""The canonical images answer as Langbase's: a ``chat.completion`` with the images in ``message.images``.

One choice per generated image (the Images API reference: "can contain more than one element if n is
greater than 1"), each holding its image as ``{"type": "image_url", "image_url": {"url": ...}, "index":
<the image's number>}``. An image the provider returned by URL keeps its URL; one returned as base64 becomes
a ``data:`` URL of its type (``output_format`` when the answer says it, else read from the data's first
bytes). ``usage`` is in Chat Completions' shape, the generated image tokens in
``completion_tokens_details.image_tokens`` (0 where the provider does not count them), and carries the
call's ``cost`` when the ledger priced it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["images_answer"]

JSON = dict[str, Any]

# The first characters of base64 image data, by type.
_SIGNATURES = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("UklGR", "image/webp"), ("R0lGOD", "image/gif"))
_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def images_answer(
    answer: JSON, *, answer_id: str, provider: str, model: str, created: int, cost: float | None = None
) -> JSON:
    """Langbase's answer for the canonical images ``answer`` (OpenAI's Images API shape); ``cost`` is what the
    ledger priced the call at (``None``: not priced)."""
    data = answer.get("data")
    images = [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
    mime = _FORMATS.get(str(answer.get("output_format") or "").lower())
    choices = []
    for index, image in enumerate(images):
        url = _url(image, mime)
        if url is None:
            continue
        message: JSON = {
            "role": "assistant",
            "content": None,
            "images": [{"type": "image_url", "image_url": {"url": url}, "index": index}],
        }
        if isinstance(image.get("revised_prompt"), str):
            message["revised_prompt"] = image["revised_prompt"]
        choices.append(
            {
                "logprobs": None,
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "index": index,
                "message": message,
            }
        )
    created_at = answer.get("created")
    return {
        "id": answer_id,
        "provider": provider,
        "model": model,
        "object": "chat.completion",
        "created": created_at if isinstance(created_at, int) and not isinstance(created_at, bool) else created,
        "choices": choices,
        "usage": _usage(answer.get("usage"), cost),
    }


def _url(image: JSON, mime: str | None) -> str | None:
    url = image.get("url")
    if isinstance(url, str) and url:
        return url
    data = image.get("b64_json")
    if isinstance(data, str) and data:
        return f"data:{mime or _sniffed(data)};base64,{data}"
    return None


def _sniffed(data: str) -> str:
    return next((mime for prefix, mime in _SIGNATURES if data.startswith(prefix)), "image/png")


def _usage(usage: Any, cost: float | None) -> JSON:
    usage = usage if isinstance(usage, dict) else {}
    prompt = _int(usage.get("prompt_tokens")) or _int(usage.get("input_tokens"))
    completion = _int(usage.get("completion_tokens")) or _int(usage.get("output_tokens"))
    prompt_details = _dict(usage.get("prompt_tokens_details")) or _dict(usage.get("input_tokens_details"))
    completion_details = _dict(usage.get("completion_tokens_details")) or _dict(usage.get("output_tokens_details"))
    # OpenAI's Images API counts only image tokens in its output when it does not break them down.
    image_tokens = _int(completion_details.get("image_tokens"))
    if not image_tokens and "output_tokens" in usage and not completion_details:
        image_tokens = completion
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(usage.get("total_tokens")) or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _int(prompt_details.get("cached_tokens"))},
        "completion_tokens_details": {
            "reasoning_tokens": _int(completion_details.get("reasoning_tokens")),
            "image_tokens": image_tokens,
        },
    }
    if cost is None:
        said = usage.get("cost")
        cost = said if isinstance(said, int | float) and not isinstance(said, bool) else None
    if cost is not None:
        out["cost"] = cost
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}
