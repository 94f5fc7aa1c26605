"""The mock's embeddings (deterministic unit vectors) and images (solid-colour PNGs)."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import math
import struct
import time
import zlib
from typing import Any

import orjson

from relaygate.upstream import UpstreamRequest

__all__ = ["embeddings", "form", "images"]

DEFAULT_DIMENSIONS = 16


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    # A string, strings, one input as token ids (a list of ints) or several (lists of ints).
    one = isinstance(raw, str) or (isinstance(raw, list) and bool(raw) and all(isinstance(t, int) for t in raw))
    inputs: list[Any] = [raw] if one else list(raw or [])
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        vector = _vector(item if isinstance(item, str) else orjson.dumps(item).decode(), dimensions)
        embedding: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(text: str, dimensions: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Rounded through float32 so that float and base64 answers decode to the same numbers.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]


def images(body: dict[str, Any], image: bytes = b"") -> dict[str, Any]:
    """Solid-colour PNGs whose colour depends on the prompt (and the image edited)."""
    n = int(body.get("n") or 1)
    png = _png(hashlib.sha256(str(body.get("prompt", "")).encode() + image).digest()[:3])
    encoded = base64.b64encode(png).decode()
    if body.get("response_format") == "url":
        data = [{"url": "data:image/png;base64," + encoded} for _ in range(n)]
    else:
        data = [{"b64_json": encoded} for _ in range(n)]
    answer: dict[str, Any] = {"created": int(time.time()), "data": data, "output_format": "png"}
    if isinstance(body.get("size"), str):
        answer["size"] = body["size"]
    return answer


def form(request: UpstreamRequest) -> tuple[dict[str, Any], bytes]:
    """The fields and the image file of a multipart ``/images/edits`` request."""
    content_type = request.headers.get("content-type", "")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + (request.content or b"")
    )
    fields: dict[str, Any] = {}
    image = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename():
            image = data
        elif isinstance(name, str):
            fields[name] = data.decode()
    return fields, image


def _png(rgb: bytes, size: int = 8) -> bytes:
    """A small solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + rgb * size for _ in range(size))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
