"""OpenAI image generation from a Gemini image model's ``:generateContent``.

The request asks for ``responseModalities: ["IMAGE"]``, the OpenAI size (or ``width`` and ``height``, as
the nearest aspect ratio Gemini makes) as an aspect ratio and ``n`` as the candidate count; an ``image_url``
(image-to-image) goes in as an image part after the prompt; ``steps`` has no Gemini counterpart and is left
out. Images come back only as ``b64_json``. An answer without any image is an error, never an empty list:
400 ``content_policy_violation`` when Gemini refused, 502 ``no_image`` otherwise.
"""

from __future__ import annotations

from typing import Any

from relaygate.errors import InvalidRequestError, UpstreamError
from relaygate.providers.gemini.media import media_part
from relaygate.providers.gemini.responses import block_reason, candidates_of, modality_count, token_count
from relaygate.providers.images.params import ASPECT_RATIOS, IMAGE_SIZES, aspect_ratio, ratio_of_request
from relaygate.providers.params import invalid_value, optional_int

__all__ = ["ASPECT_RATIOS", "IMAGE_SIZES", "aspect_ratio", "image_request", "image_usage", "images_response"]

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


def image_request(body: dict[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` body asking an image model for ``n`` images of the prompt."""
    if body.get("response_format") == "url":
        raise invalid_value("Gemini images are returned only as 'b64_json'; 'url' is not offered.", "response_format")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise invalid_value("'prompt' must be a non-empty string.", "prompt")
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    ratio = ratio_of_request(body)
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    n = optional_int(body, "n", minimum=1)
    if n is not None and n > 1:
        config["candidateCount"] = n
    parts: list[dict[str, Any]] = [{"text": prompt}]
    image_url = body.get("image_url")
    if image_url is not None:
        if not isinstance(image_url, str) or not image_url:
            raise invalid_value("'image_url' must be an http(s) URL or a data: URL.", "image_url")
        parts.append(media_part(image_url, "image_url", default_mime="image/png"))
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def images_response(response: dict[str, Any], created: int) -> dict[str, Any]:
    """OpenAI's images answer; an answer without an image is an error, never an empty list."""
    data: list[dict[str, Any]] = []
    mime_types: list[str] = []
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
                mime_types.append(str(inline.get("mimeType") or ""))
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
    answer = {"created": created, "data": data, "usage": image_usage(response.get("usageMetadata"))}
    # The images' type, as OpenAI's answer names it (png, jpeg, webp), when they all share one.
    formats = {mime.removeprefix("image/") for mime in mime_types}
    if len(formats) == 1 and (kind := formats.pop()) in ("png", "jpeg", "webp"):
        answer["output_format"] = kind
    return answer


def image_usage(metadata: Any) -> dict[str, Any]:
    meta = metadata if isinstance(metadata, dict) else {}
    prompt = token_count(meta, "promptTokenCount")
    output = token_count(meta, "candidatesTokenCount") + token_count(meta, "thoughtsTokenCount")
    details = meta.get("promptTokensDetails")
    written = meta.get("candidatesTokensDetails")
    usage: dict[str, Any] = {
        "input_tokens": prompt,
        "output_tokens": output,
        "total_tokens": token_count(meta, "totalTokenCount") or prompt + output,
        "input_tokens_details": {
            "text_tokens": modality_count(details, "TEXT"),
            "image_tokens": modality_count(details, "IMAGE"),
        },
    }
    if isinstance(written, list):
        # Image output tokens are billed at a rate of their own; text (and thoughts) at the text rate.
        images = modality_count(written, "IMAGE")
        usage["output_tokens_details"] = {"text_tokens": output - images, "image_tokens": images}
    return usage
