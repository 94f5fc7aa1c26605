"""Judging streamed text chunk by chunk: wherever the chunks split it, the result is the whole text's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relaygate.guards.base import Finding, Guard, GuardEnv, GuardFailure, GuardSpec, TextStage
from relaygate.guards.pii import PiiGuard
from relaygate.guards.regex_guard import RegexGuard
from relaygate.guards.word_count import WordCountGuard

TEXT = (
    "Dear Ann (ann@example.org), your key sk-ABCdef123456 and card 4242 4242 4242 4242 are noted. "
    "Write to jane@mail.corp-secret.com or jane.doe@acme.bank.co.uk, pay to de89 3704 0044 0532 0130 00, "
    "call 1-800-555-0199 or ip:2001:db8::1. Bye!"
)
REDACTED = (
    "Dear Ann ([EMAIL]), your key [KEY] and card [CARD] are noted. "
    "Write to [EMAIL] or [EMAIL], pay to [IBAN], call [PHONE] or ip:[IP]. Bye!"
)


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


def test_a_complete_match_that_may_still_grow_is_held_whole() -> None:
    # "jane@mail.corp" is an address already, but the next chunk makes it a longer one.
    stage = guard("pii", "redact", entities=["email"]).text_stage(256)
    assert stage.feed("mail jane@mail.corp", False) == "mail "
    assert stage.feed("-secret.com now!", False) == "[EMAIL] now!"
    stage = guard("regex", "redact", patterns=["abcde|c"]).text_stage(256)
    # The regex module reports the complete match "c" rather than "abcd" in progress: both are held.
    assert stage.feed("x abcd", False) == "x "
    assert stage.feed("e!", False) + stage.feed("", True) == "[REDACTED]!"


def test_a_word_is_held_only_while_it_may_be_the_start_of_an_address() -> None:
    stage = guard("pii", "redact", entities=["email"]).text_stage(256)
    # No more than 64 characters stand before an address's @ (RFC 5321).
    assert stage.feed("x" * 100, False) == "x" * 36
    assert stage.feed(" ok!", False) == "x" * 64 + " ok!"


KEY = r"-----BEGIN PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END PRIVATE KEY-----"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIE" + "A" * 400 + "\n-----END PRIVATE KEY-----"


def test_a_match_longer_than_the_old_tail_is_still_caught_whole() -> None:
    for action, expected in (("block", None), ("redact", "key: [KEY] done")):
        stage = guard("regex", action, patterns=[KEY], replacement="[KEY]").text_stage(100_000)
        text = f"key: {PEM} done"
        passed = []
        try:
            for at in range(0, len(text), 20):
                passed.append(stage.feed(text[at : at + 20], False))
            passed.append(stage.feed("", True))
        except Finding:
            assert action == "block" and "".join(passed) == "key: "
        else:
            assert "".join(passed) == expected


def test_a_long_match_in_progress_is_held_whole_and_released_once_it_is_no_match() -> None:
    body = "MIIE" + "A" * 5000
    key = f"a -----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY----- b"
    stage = guard("regex", "redact", patterns=[KEY], replacement="[KEY]").text_stage(100_000)
    passed = [stage.feed(key[at : at + 7], False) for at in range(0, len(key), 7)]
    assert "".join(passed) + stage.feed("", True) == "a [KEY] b" and "MIIE" not in "".join(passed)
    # Past a thousand held characters the stage scans again only as the hold grows by a quarter (linear
    # time), so what turns out to be no match goes on a little later, not at the end.
    not_key = f"a -----BEGIN PRIVATE KEY-----\n{body}. That was no key. " + "Plain words go on. " * 100
    stage = guard("regex", "redact", patterns=[KEY], replacement="[KEY]").text_stage(100_000)
    passed = [stage.feed(not_key[at : at + 7], False) for at in range(0, len(not_key), 7)]
    assert "That was no key" in "".join(passed)
    assert "".join(passed) + stage.feed("", True) == not_key


def test_a_match_still_in_progress_at_the_bound_fails_closed() -> None:
    text = f"key: {PEM} done"
    stage = guard("regex", "block", patterns=[KEY]).text_stage(64)
    passed = []
    with pytest.raises(GuardFailure, match=r"a possible pattern #1 of 1 ran past .*_hold_chars \(64 characters\)"):
        for at in range(0, len(text), 20):
            passed.append(stage.feed(text[at : at + 20], False))
    assert "".join(passed) == "key: "
    # A redacting guard fails closed alike: redacting the held text and going on would judge the rest of
    # the key out of context and pass on its body.
    stage = guard("regex", "redact", patterns=[KEY], replacement="[KEY]").text_stage(64)
    passed = []
    with pytest.raises(GuardFailure):
        for at in range(0, len(text), 20):
            passed.append(stage.feed(text[at : at + 20], False))
    assert "".join(passed) == "key: "


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
