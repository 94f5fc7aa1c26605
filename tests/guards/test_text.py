"""The texts guards judge in a request, and redactions written back into the parts they came from."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.guards.results import Verdict
from relaygate.guards.text import Texts, request_texts


def test_a_message_s_text_parts_are_one_text_its_refusal_and_tool_arguments_others() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"},
            ]},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "c"}, {"type": "refusal", "refusal": "d"}],
                "refusal": "e",
                "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}, {"function": {"name": "g"}}],
            },
            {"role": "assistant", "content": None, "function_call": {"name": "h", "arguments": '{"x": 1}'}},
        ]
    }  # fmt: skip
    assert request_texts("chat", body).strings == ["ab", "cd", "e", "{}", '{"x": 1}']


@pytest.mark.parametrize(
    ("parts", "edits", "expected"),
    [
        (["card 4111 1111", " 1111 1111"], [(5, 24, "[CARD]")], ["card [CARD]", ""]),
        # Spanning three parts (the middle one empty), with edits before and after it.
        (["a@b.io x 41", "", "11 11", "11 1111 1111 y c@d.io"], [(0, 6, "[E]"), (9, 28, "[C]"), (31, 37, "[E]")],
         ["[E] x [C]", "", "", " y [E]"]),
        # A match that starts with a part goes into that part.
        (["ab", "cd"], [(2, 4, "[X]")], ["ab", "[X]"]),
    ],
)  # fmt: skip
def test_redactions_of_a_joined_text_go_into_the_parts_in_place(
    parts: list[str], edits: list[tuple[int, int, str]], expected: list[str]
) -> None:
    holders = [{"text": part} for part in parts]
    texts = Texts([[(holder, "text") for holder in holders]])
    joined = "".join(expected)
    texts.redact(Verdict(False, texts=[joined], edits=[edits]))
    texts.write()
    assert [holder["text"] for holder in holders] == expected
