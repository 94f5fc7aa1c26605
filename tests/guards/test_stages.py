"""Judging streamed text chunk by chunk: wherever the chunks split it, the result is the whole text's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaygate.guards.base import Finding, Guard, GuardEnv, GuardSpec, TextStage
from relaygate.guards.pii import PiiGuard
from relaygate.guards.regex_guard import RegexGuard
from relaygate.guards.word_count import WordCountGuard

TEXT = "Dear Ann (ann@example.org), your key sk-ABCdef123456 and card 4242 4242 4242 4242 are noted. Bye!"
REDACTED = "Dear Ann ([EMAIL]), your key [KEY] and card [CARD] are noted. Bye!"


def guard(kind: str, action: str, **parameters: object) -> Guard:
    spec = GuardSpec(kind, kind, "output", action, parameters)  # type: ignore[arg-type]
    types: dict[str, type[Guard]] = {"pii": PiiGuard, "regex": RegexGuard, "word_count": WordCountGuard}
    return types[kind](spec, GuardEnv())


def chain(action: str) -> list[TextStage]:
    return [
        guard("pii", action).text_stage(256),
        guard("regex", action, patterns=["sk-[A-Za-z0-9]{8,}"], replacement="[KEY]").text_stage(256),
    ]


def run(stages: list[TextStage], pieces: list[str]) -> str:
    out = []
    for index, piece in enumerate(pieces):
        final = index == len(pieces) - 1
        for stage in stages:
            piece = stage.feed(piece, final)
        out.append(piece)
    return "".join(out)


def splits(text: str) -> Iterator[list[str]]:
    for size in range(1, 12):
        yield [text[at : at + size] for at in range(0, len(text), size)]
    for cut in range(1, len(text)):
        yield [text[:cut], text[cut:]]


def test_redaction_is_the_same_wherever_the_chunks_split_the_text() -> None:
    for pieces in splits(TEXT):
        assert run(chain("redact"), pieces) == REDACTED, pieces


def test_blocking_stops_before_any_part_of_a_match_is_passed_on() -> None:
    for pieces in splits(TEXT):
        stages = chain("block")
        passed = []
        with pytest.raises(Finding):
            for index, piece in enumerate(pieces):
                for stage in stages:
                    piece = stage.feed(piece, index == len(pieces) - 1)
                passed.append(piece)
        assert "Dear Ann (".startswith("".join(passed)), pieces


def test_text_that_cannot_start_a_match_is_passed_on_at_once() -> None:
    stage = guard("regex", "redact", patterns=["sk-[A-Za-z0-9]{8,}"]).text_stage(256)
    assert stage.feed("Hello world. ", False) == "Hello world. "
    assert stage.feed("Use s", False) == "Use "
    assert stage.feed("o it", False) == "so it"


def test_the_held_tail_is_bounded() -> None:
    stage = guard("pii", "redact", entities=["email"]).text_stage(32)
    word = "x" * 100  # could be the start of an e-mail address for ever
    released = stage.feed(word, False)
    assert len(released) == 100 - 32 and stage.feed("", True) == "x" * 32


def test_word_count_counts_words_split_across_chunks() -> None:
    stage = guard("word_count", "block", max_words=4).text_stage(256)
    assert stage.feed("one tw", False) == "one tw"
    assert stage.feed("o thr", False) == "o thr"
    assert stage.feed("ee fo", False) == "ee fo"
    with pytest.raises(Finding, match="more than 4 words"):
        stage.feed("ur five", False)
    at_least = guard("word_count", "block", min_words=3).text_stage(256)
    at_least.feed("one two", False)
    with pytest.raises(Finding, match="2 words, fewer than 3"):
        at_least.feed("", True)
