"""``POST /v1/messages/count_tokens``: exact from an Anthropic provider, an estimate otherwise.

The model is routed as a call would be (aliases, virtual models: the first target). An Anthropic target
is asked its own ``/messages/count_tokens`` with the caller's bytes (the model replaced, as a native call
sends them) and its answer is relayed: ``x-relaygate-token-count: exact``. Another target, or an Anthropic
provider that cannot answer (it does not serve the endpoint, it is down), gets an estimate:
``x-relaygate-token-count: estimate`` and ``"estimated": true`` in the body. A 400 from Anthropic is the
caller's and is answered as such.

The estimate is what a typical tokenizer makes of the request, not the upper bound the limits reserve
(:mod:`relaygate.limits.estimate` counts a token per byte, so that no call is under-reserved): a token
per four bytes of text and JSON (what :class:`~relaygate.limits.estimate.StreamTally` assumes of output),
:data:`IMAGE_TOKENS` an image, :data:`PDF_PAGE_TOKENS` a PDF page (pages counted by
:func:`~relaygate.limits.attachments.pdf_pages`), and Anthropic's tool-use system prompt when tools are
defined.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from typing import TYPE_CHECKING, Any

import orjson

from relaygate.dialects.messages.content import chat_messages, system_text
from relaygate.dialects.messages.native import native_body, native_headers
from relaygate.errors import GatewayError
from relaygate.limits.attachments import pdf_pages
from relaygate.providers.base import json_answer, read_all

if TYPE_CHECKING:
    from relaygate.dialects.messages.exchange import MessagesExchange

__all__ = ["HEADER", "count_tokens", "estimate_tokens"]

logger = logging.getLogger("relaygate.dialects")

JSON = dict[str, Any]

HEADER = b"x-relaygate-token-count"
BYTES_PER_TOKEN = 4
# Anthropic: an image of up to 1.15 megapixels is about 1,600 tokens (width x height / 750).
IMAGE_TOKENS = 1600
# Anthropic reads a page as its text and as an image: 1,500 to 3,000 tokens for a dense one.
PDF_PAGE_TOKENS = 2000
# Anthropic's tool-use system prompt for recent models (docs: "Tool use pricing and tokens").
TOOLS_TOKENS = 346
MESSAGE_TOKENS = 4
REQUEST_TOKENS = 8


async def count_tokens(exchange: MessagesExchange, body: JSON) -> tuple[bytes, bytes]:
    """The answer's body and whether it is ``exact`` or an ``estimate``."""
    target = exchange.dialect.router.plan(body["model"], body, ctx=exchange.ctx).targets[0]
    provider = target.route.provider
    if provider.kind == "anthropic":
        content = native_body(exchange.raw, body, target.route.model)
        try:
            response = await provider.post(
                provider.base_url + "/messages/count_tokens",
                {},
                headers=native_headers(exchange.headers),
                content=content,
            )
            answer = json_answer(await read_all(response), provider.name)
            if isinstance(answer.get("input_tokens"), int):
                return orjson.dumps(answer), b"exact"
            logger.warning("provider %s answered count_tokens without input_tokens; estimated", provider.name)
        except GatewayError as error:
            if error.status == 400:
                raise exchange.ctx.scrub(error) from None
            logger.warning("provider %s could not count tokens (%s); estimated", provider.name, error.message)
    # What Anthropic would refuse is refused here too (as a call's translation refuses it).
    chat_messages(body.get("messages"), False, [])
    system_text(body.get("system"), False)
    return orjson.dumps({"input_tokens": estimate_tokens(body), "estimated": True}), b"estimate"


def estimate_tokens(body: JSON) -> int:
    """A typical count of the input tokens of a Messages request (see the module docstring)."""
    tally = _Tally()
    tally.content(body.get("system"))
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        tally.fixed += MESSAGE_TOKENS
        if isinstance(message, dict):
            tally.content(message.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        tally.fixed += TOOLS_TOKENS
        tally.json(tools)
        tally.json(body.get("tool_choice"))
    return REQUEST_TOKENS + tally.fixed + math.ceil(tally.bytes / BYTES_PER_TOKEN)


class _Tally:
    def __init__(self) -> None:
        self.bytes = 0
        self.fixed = 0

    def json(self, value: Any) -> None:
        if value is not None:
            self.bytes += len(orjson.dumps(value))

    def content(self, content: Any) -> None:
        if isinstance(content, str):
            self.bytes += len(content.encode())
            return
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict):
                self.block(block)

    def block(self, block: JSON) -> None:
        kind = block.get("type")
        if kind in ("text", "thinking"):
            self.content(block.get(kind))
        elif kind == "image":
            self.fixed += IMAGE_TOKENS
        elif kind == "document":
            self.document(block.get("source"))
        elif kind == "tool_use":
            self.content(block.get("name"))
            self.json(block.get("input"))
        elif kind in ("tool_result", "search_result"):
            self.content(block.get("content"))
        else:
            self.json(block)

    def document(self, source: Any) -> None:
        if not isinstance(source, dict):
            return
        if source.get("type") == "text":
            self.content(source.get("data"))
        elif source.get("type") == "content":
            self.content(source.get("content"))
        elif source.get("type") == "base64" and isinstance(source.get("data"), str):
            try:
                pages = pdf_pages(base64.b64decode(source["data"]))
            except (binascii.Error, ValueError):
                pages = None
            self.fixed += (pages or 1) * PDF_PAGE_TOKENS
        else:
            self.fixed += PDF_PAGE_TOKENS
