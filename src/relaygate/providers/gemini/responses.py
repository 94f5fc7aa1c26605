"""Gemini answers as OpenAI ``chat.completion`` objects: content, tool calls, finish reasons and usage.

These mappings serve whole answers and, candidate by candidate, the stream (:mod:`.stream`) too.

- Thought parts are left out of the content; thoughts count as completion tokens (``reasoning_tokens``),
  as OpenAI bills them.
- Tool call ids are synthesized (``call_<hex>``). A Gemini 3 ``thoughtSignature`` rides in the id after
  ``__thought__``, so it goes back with its call when the client replays the conversation.
- A candidate with function calls finishes with ``tool_calls`` (Gemini says ``STOP``).
  ``RECITATION`` and ``OTHER`` finish as ``content_filter``: Google cut the answer; it did not end.
- A prompt that was blocked gets no candidates from Gemini; OpenAI clients get one filtered choice.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.context import sane_count
from relaygate.ids import new_hex

__all__ = [
    "block_reason",
    "candidate_index",
    "candidate_output",
    "candidates_of",
    "chat_response",
    "completion_id",
    "finish_reason",
    "logprobs_of",
    "modality_count",
    "model_of",
    "new_tool_call_id",
    "split_tool_call_id",
    "token_count",
    "usage_of",
]

SIGNATURE_SEPARATOR = "__thought__"

FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MALFORMED_FUNCTION_CALL": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "LANGUAGE": "content_filter",
    "RECITATION": "content_filter",
    "OTHER": "content_filter",
}


def chat_response(response: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` for a ``generateContent`` answer."""
    choices: list[dict[str, Any]] = []
    for position, candidate in enumerate(candidates_of(response)):
        text, calls = candidate_output(candidate)
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate_index(candidate, position),
                "message": message,
                "logprobs": logprobs_of(candidate),
                "finish_reason": finish_reason(candidate.get("finishReason"), has_calls=bool(calls)),
            }
        )
    if not choices:
        # The prompt itself was blocked: Gemini answers without candidates, OpenAI with a filtered choice.
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter" if block_reason(response) else "stop",
            }
        )
    return {
        "id": completion_id(response),
        "object": "chat.completion",
        "created": created,
        "model": model_of(response, model),
        "choices": choices,
        "usage": usage_of(response.get("usageMetadata")),
    }


def candidate_output(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The answer text (thoughts left out) and the tool calls of one candidate."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            signature = part.get("thoughtSignature")
            calls.append(
                {
                    "id": new_tool_call_id(signature if isinstance(signature, str) else None),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return "".join(texts), calls


def new_tool_call_id(signature: str | None = None) -> str:
    call_id = "call_" + new_hex()
    return f"{call_id}{SIGNATURE_SEPARATOR}{signature}" if signature else call_id


def split_tool_call_id(call_id: str) -> tuple[str, str | None]:
    """The id proper and the thought signature kept in it, if any."""
    head, separator, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return head, (signature or None) if separator else None


def finish_reason(reason: Any, *, has_calls: bool) -> str:
    # Gemini says STOP after function calls; OpenAI clients look for "tool_calls" to run them.
    if has_calls:
        return "tool_calls"
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


def logprobs_of(candidate: dict[str, Any]) -> dict[str, Any] | None:
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates")
    tops = result.get("topCandidates")
    content: list[dict[str, Any]] = []
    for position, token in enumerate(chosen if isinstance(chosen, list) else ()):
        if not isinstance(token, dict):
            continue
        alternatives: Any = []
        if isinstance(tops, list) and position < len(tops) and isinstance(tops[position], dict):
            alternatives = tops[position].get("candidates") or []
        content.append(
            {
                **_token_logprob(token),
                "top_logprobs": [_token_logprob(item) for item in alternatives if isinstance(item, dict)],
            }
        )
    return {"content": content, "refusal": None}


def _token_logprob(token: dict[str, Any]) -> dict[str, Any]:
    text = str(token.get("token") or "")
    return {"token": text, "logprob": token.get("logProbability") or 0.0, "bytes": list(text.encode())}


GEMINI_COUNTS = (
    "promptTokenCount", "toolUsePromptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
    "cachedContentTokenCount", "totalTokenCount",
)  # fmt: skip


def usage_of(metadata: Any) -> dict[str, Any]:
    """OpenAI usage for Gemini's ``usageMetadata`` (thoughts count as completion, as OpenAI bills them)."""
    meta = metadata if isinstance(metadata, dict) else {}
    if not all(sane_count(meta.get(key)) for key in GEMINI_COUNTS):
        # Figures that are no counts are passed on as sent, not summed: the gateway takes such usage as unknown.
        return {
            "prompt_tokens": meta.get("promptTokenCount"),
            "input_tokens": meta.get("toolUsePromptTokenCount"),
            "completion_tokens": meta.get("candidatesTokenCount"),
            "total_tokens": meta.get("totalTokenCount"),
            "prompt_tokens_details": {"cached_tokens": meta.get("cachedContentTokenCount")},
            "completion_tokens_details": {"reasoning_tokens": meta.get("thoughtsTokenCount")},
        }
    thoughts = token_count(meta, "thoughtsTokenCount")
    prompt = token_count(meta, "promptTokenCount") + token_count(meta, "toolUsePromptTokenCount")
    completion = token_count(meta, "candidatesTokenCount") + thoughts
    prompt_details: dict[str, int] = {"cached_tokens": token_count(meta, "cachedContentTokenCount")}
    audio = modality_count(meta.get("promptTokensDetails"), "AUDIO")
    if audio:
        prompt_details["audio_tokens"] = audio
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": token_count(meta, "totalTokenCount") or prompt + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def completion_id(response: dict[str, Any]) -> str:
    response_id = response.get("responseId")
    return "chatcmpl-" + (response_id if isinstance(response_id, str) and response_id else new_hex())


def candidates_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    candidates = response.get("candidates")
    return [c for c in candidates if isinstance(c, dict)] if isinstance(candidates, list) else []


def candidate_index(candidate: dict[str, Any], position: int) -> int:
    index = candidate.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def block_reason(response: dict[str, Any]) -> str | None:
    feedback = response.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) and reason else None


def model_of(response: dict[str, Any], model: str) -> str:
    version = response.get("modelVersion")
    return version if isinstance(version, str) and version else model


def token_count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def modality_count(details: Any, modality: str) -> int:
    return sum(
        token_count(item, "tokenCount")
        for item in (details if isinstance(details, list) else ())
        if isinstance(item, dict) and item.get("modality") == modality
    )
