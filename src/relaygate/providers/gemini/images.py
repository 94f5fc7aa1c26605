"""OpenAI image generation from a Gemini image model's ``:generateContent``.

The request asks for ``responseModalities: ["IMAGE"]``, the OpenAI size as an aspect ratio and ``n`` as
the candidate count; images come back only as ``b64_json``. An answer without any image is an error,
never an empty list: 400 ``content_policy_violation`` when Gemini refused, 502 ``no_image`` otherwise.
"""

from __future__ import annotations

import math
from typing import Any

from relaygate.errors import InvalidRequestError, UpstreamError
from relaygate.providers.gemini.responses import block_reason, candidates_of, modality_count, token_count
from relaygate.providers.params import invalid_value, optional_int

__all__ = ["aspect_ratio", "image_request", "image_usage", "images_response"]

# Reasons for an image answer without an image that mean Gemini refused the prompt.
IMAGE_REFUSALS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
        "NO_IMAGE",
    }
)
IMAGE_SIZES = {
    "1024x1024": "1:1",
    "1792x1024": "16:9",
    "1024x1792": "9:16",
    "1536x1024": "3:2",
    "1024x1536": "2:3",
}
ASPECT_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})


def image_request(body: dict[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body asking an image model for ``n`` images of the prompt."""
    if body.get("response_format") == "url":
        raise invalid_value("Gemini images are returned only as 'b64_json'; 'url' is not offered.", "response_format")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise invalid_value("'prompt' must be a non-empty string.", "prompt")
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    ratio = aspect_ratio(body.get("size"))
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    n = optional_int(body, "n", minimum=1)
    if n is not None and n > 1:
        config["candidateCount"] = n
    return {"contents": [{"role": "user", "parts": [{"text": prompt}]}], "generationConfig": config}


def aspect_ratio(size: Any) -> str | None:
    """Gemini's aspect ratio for an OpenAI size; ``None`` (Gemini chooses) for ``auto``."""
    if size is None or size == "auto":
        return None
    if isinstance(size, str):
        if size in IMAGE_SIZES:
            return IMAGE_SIZES[size]
        if size in ASPECT_RATIOS:
            return size
        width, x, height = size.partition("x")
        if x and width.isdigit() and height.isdigit() and int(width) and int(height):
            divisor = math.gcd(int(width), int(height))
            ratio = f"{int(width) // divisor}:{int(height) // divisor}"
            if ratio in ASPECT_RATIOS:
                return ratio
    raise invalid_value(
        f"Unsupported size {size!r}: use auto, {', '.join(IMAGE_SIZES)}, or a size of ratio "
        f"{', '.join(sorted(ASPECT_RATIOS))}.",
        "size",
    )


def images_response(response: dict[str, Any], created: int) -> dict[str, Any]:
    """OpenAI's images answer; an answer without an image is an error, never an empty list."""
    data: list[dict[str, Any]] = []
    texts: list[str] = []
    reasons: set[str] = set()
    for candidate in candidates_of(response):
        if isinstance(candidate.get("finishReason"), str):
            reasons.add(candidate["finishReason"])
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict) or part.get("thought"):
                continue  # Gemini 3 image models show drafts as thoughts
            inline = part.get("inlineData")
            if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                data.append({"b64_json": inline["data"]})
            elif isinstance(part.get("text"), str):
                texts.append(part["text"])
    if not data:
        block = block_reason(response)
        if block or reasons & IMAGE_REFUSALS:
            raise InvalidRequestError(
                f"Gemini generated no image: the request was refused ({block or ', '.join(sorted(reasons))}).",
                param="prompt",
                code="content_policy_violation",
            )
        said = " ".join(texts).strip()
        raise UpstreamError("Gemini answered without an image" + (f": {said[:500]}" if said else "."), code="no_image")
    return {"created": created, "data": data, "usage": image_usage(response.get("usageMetadata"))}


def image_usage(metadata: Any) -> dict[str, Any]:
    meta = metadata if isinstance(metadata, dict) else {}
    prompt = token_count(meta, "promptTokenCount")
    output = token_count(meta, "candidatesTokenCount") + token_count(meta, "thoughtsTokenCount")
    details = meta.get("promptTokensDetails")
    return {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": token_count(meta, "totalTokenCount") or prompt + output,
        "input_tokens_details": {
            "text_tokens": modality_count(details, "TEXT"),
            "image_tokens": modality_count(details, "IMAGE"),
        },
    }
