"""Fake image servers speaking the real wire formats, served over real HTTP in tests.

:class:`FakeImages` is OpenAI's Images API (``flavor="openai"``), Together's (``flavor="together"``) or
OpenRouter's chat completions with image output (``flavor="chat"``):

- OpenAI: ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (a multipart form with an
  ``image`` file); sizes are checked as OpenAI's models check them (gpt-image-1: 1024x1024, 1536x1024,
  1024x1536, auto), and unknown fields (``width``, ``steps``) are refused as OpenAI refuses them. gpt-image-1
  answers with ``b64_json`` and token usage; dall-e-3 with a URL and a revised prompt.
- Together: ``POST /v1/images/generations`` with ``width``, ``height``, ``steps``, ``n``, ``image_url`` and
  ``response_format`` (``url`` or ``base64``); ``size`` is refused, as Together does not know it.
- OpenRouter: ``POST /v1/chat/completions`` with ``modalities: ["image", "text"]``: one choice whose message
  holds some text and ``images`` (``data:`` URLs), usage counting ``image_tokens``; a request without image
  modalities is refused.

Either checks ``Authorization: Bearer <key>`` against :attr:`FakeImages.keys`, and answers a key it does not
know with a 401 that echoes the key back in full, as a careless provider would; the model ``echo-key`` is a
400 whose message, ``param`` and ``code`` echo the key it was sent, known or not.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.types import Receive, Scope, Send

from tests.fakes.recording import Seen

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRfake-image").decode()
GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALLE3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
OPENAI_FIELDS = frozenset(
    {"model", "prompt", "n", "size", "quality", "response_format", "output_format", "background", "user", "style"}
)


@dataclass
class FakeImages:
    flavor: Literal["openai", "together", "chat"] = "openai"
    keys: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    # The image file each edits request uploaded, in order.
    uploads: list[bytes] = field(default_factory=list)

    def last(self, suffix: str = "") -> Seen:
        return [r for r in self.requests if r.path.endswith(suffix)][-1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        if path.endswith("/images/edits"):
            body, image = _form(headers.get("content-type", ""), raw)
            self.uploads.append(image)
        else:
            body = orjson.loads(raw) if raw else {}
        self.requests.append(Seen(scope["method"], path, headers, body))
        presented = headers.get("authorization", "").removeprefix("Bearer ")
        if isinstance(body, dict) and body.get("model") == "echo-key":
            error = {"message": f"Bad request made with key {presented}", "type": "invalid_request_error"}
            await _json(send, 400, {"error": {**error, "param": presented, "code": f"key_{presented}"}})
            return
        if presented not in self.keys:
            said = f"Incorrect API key provided: {presented}. You can find your API key elsewhere."
            await _json(
                send, 401, {"error": {"message": said, "type": "invalid_request_error", "code": "invalid_api_key"}}
            )
            return
        if self.flavor == "together":
            await self._together(send, path, body)
        elif self.flavor == "chat":
            await self._chat(send, path, body)
        else:
            await self._openai(send, path, body)

    async def _openai(self, send: Send, path: str, body: dict[str, Any]) -> None:
        if path not in ("/v1/images/generations", "/v1/images/edits"):
            await _error(send, 404, f"Invalid URL (POST {path})", None)
            return
        unknown = sorted(key for key in body if key not in OPENAI_FIELDS and not key.startswith("file:"))
        if unknown:
            await _error(send, 400, f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
            return
        model = str(body.get("model", ""))
        n = int(body.get("n") or 1)
        size = body.get("size")
        if model.startswith("dall-e-3"):
            if size is not None and size not in DALLE3_SIZES:
                await _error(send, 400, f"Invalid value: '{size}'.", "size")
                return
            data = [{"url": f"https://images.example/{i}.png", "revised_prompt": "A revised prompt"} for i in range(n)]
            await _json(send, 200, {"created": int(time.time()), "data": data})
            return
        if size is not None and size not in GPT_IMAGE_SIZES:
            await _error(send, 400, f"Invalid value: '{size}'. Supported values are: {GPT_IMAGE_SIZES}.", "size")
            return
        edited = path.endswith("/edits")
        answer = {
            "created": int(time.time()),
            "data": [{"b64_json": PNG} for _ in range(n)],
            "background": "opaque",
            "output_format": "png",
            "quality": body.get("quality") or "medium",
            "size": size if size not in (None, "auto") else "1024x1024",
            "usage": {
                "input_tokens": 50 + (323 if edited else 0),
                "input_tokens_details": {"text_tokens": 50, "image_tokens": 323 if edited else 0},
                "output_tokens": 1056 * n,
                "total_tokens": 50 + (323 if edited else 0) + 1056 * n,
            },
        }
        await _json(send, 200, answer)

    async def _together(self, send: Send, path: str, body: dict[str, Any]) -> None:
        if path != "/v1/images/generations":
            await _error(send, 404, f"Invalid URL (POST {path})", None)
            return
        if "size" in body:
            await _error(send, 400, "size is not a parameter of this API: use width and height", "size")
            return
        n = int(body.get("n") or 1)
        if body.get("response_format") == "base64":
            data: list[dict[str, Any]] = [{"index": i, "b64_json": PNG, "type": "b64_json"} for i in range(n)]
        else:
            data = [{"index": i, "url": f"https://api.together.ai/imgproxy/{i}.png"} for i in range(n)]
        await _json(send, 200, {"id": "together-img-1", "model": body.get("model"), "object": "list", "data": data})

    async def _chat(self, send: Send, path: str, body: dict[str, Any]) -> None:
        if path != "/v1/chat/completions" or "image" not in (body.get("modalities") or ()):
            await _error(send, 400, "This model answers with images: ask for modalities ['image', 'text']", None)
            return
        n = int(body.get("n") or 1)
        images = [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}, "index": i} for i in range(n)
        ]
        message = {"role": "assistant", "content": "Here is your image.", "images": images}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "native_finish_reason": "STOP"}
        usage = {
            "prompt_tokens": 12,
            "completion_tokens": 1300 * n,
            "total_tokens": 12 + 1300 * n,
            "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 1290 * n},
        }
        answer = {
            "id": "gen-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [choice],
            "usage": usage,
        }
        await _json(send, 200, answer)


def _form(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    fields: dict[str, Any] = {}
    image = b""
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            image = data
            fields[f"file:{part.get_param('name', header='content-disposition')}"] = part.get_content_type()
        else:
            fields[str(part.get_param("name", header="content-disposition"))] = data.decode()
    return fields, image


async def _error(send: Send, status: int, message: str, param: str | None) -> None:
    await _json(send, status, {"error": {"message": message, "type": "invalid_request_error", "param": param}})


async def _json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
