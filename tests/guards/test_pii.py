"""The PII detectors: checksums, formats, and things that look like personal data but are not."""

from __future__ import annotations

import pytest

from relaygate.context import RequestContext
from relaygate.guards.base import GuardEnv, GuardSpec
from relaygate.guards.patterns import distinct
from relaygate.guards.pii import PiiGuard, iban_valid, ipv6_valid, luhn_valid

pytestmark = pytest.mark.anyio


def pii(action: str = "redact", **parameters: object) -> PiiGuard:
    return PiiGuard(GuardSpec("pii", "pii", "input", action, parameters), GuardEnv())  # type: ignore[arg-type]


def found(text: str) -> list[str]:
    return [match.detector.placeholder for match in distinct(pii().scan(text))]


@pytest.mark.parametrize(
    "number",
    ["4111 1111 1111 1111", "4242424242424242", "5555-5555-5555-4444", "378282246310005", "6011111111111117"],
)
def test_luhn_accepts_test_card_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4111 1111 1111 1112", "1234567890123", "0000 0000 0000 0000", "4111", "12345678901234567890"]
)
def test_luhn_refuses_numbers_that_are_no_cards(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "iban",
    ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR14 2004 1010 0505 0001 3M02 606", "NO9386011117947"],
)
def test_iban_mod_97(iban: str) -> None:
    assert iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 01",  # one digit off: mod 97 fails
        "DE89 3704 0044 0532 0130",  # too short for Germany
        "GB82WEST1234569876543",
        "XX00 0000 0000 0000",
    ],
)
def test_iban_refuses_wrong_checksums_and_lengths(iban: str) -> None:
    assert not iban_valid(iban)


def test_ipv6_needs_a_real_address() -> None:
    assert ipv6_valid("2001:db8::8a2e:370:7334") and ipv6_valid("fe80::1")
    assert not ipv6_valid("::") and not ipv6_valid("12:30:45")


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to jane.doe+news@mail.example.co.uk today", ["[EMAIL]"]),
        ("card 4111-1111-1111-1111.", ["[CARD]"]),
        ("pay to DE89370400440532013000 now", ["[IBAN]"]),
        ("ssn 078-05-1120", ["[SSN]"]),
        ("call +1 (415) 555-0132 or 415-555-0199", ["[PHONE]", "[PHONE]"]),
        ("ring 030 1234 5678", ["[PHONE]"]),
        ("from 192.168.1.20 and 2001:db8::1", ["[IP]", "[IP]"]),
        ("card 4111.1111.1111.1111 and 3782.822463.10005.", ["[CARD]", "[CARD]"]),
        ("host ip:2001:db8::1 and ref:2001:db8::8a2e:370:7334", ["[IP]", "[IP]"]),
        ("iban de89 3704 0044 0532 0130 00, DE 89 3704 0044 0532 0130 00, gb82-west-1234-5698-7654-32", ["[IBAN]"] * 3),
        ("call 1-800-555-0199 or 1 (800) 555 0199", ["[PHONE]", "[PHONE]"]),
    ],
)
def test_what_is_found(text: str, kinds: list[str]) -> None:
    assert sorted(found(text)) == sorted(kinds)


@pytest.mark.parametrize(
    "text",
    [
        "order 12345678 shipped",  # a plain number is no phone number
        "invoice 4111111111111112",  # fails Luhn
        "on 2024-05-17 at 12:30:45",  # a date and a time
        "version 1.2.3 of the API, 3.14159",
        "the IBAN DE00 1234 5678 9012 3456 78 is made up",  # mod 97 fails
        "SSN 000-12-3456 and 666-12-3456 are never issued",
        "an IP of 999.1.1.1 does not exist",
        "a@b is no address, nor is @home",
        "it costs 1 000 000 euros",
        "std::vector and a::b::c",
        "pi is 3.1415926535897932 and e 2.7182818284590452",  # decimals, not cards after the point
        "on 12 june 2024 will do",  # no IBAN of a country that has none, whatever its checksum
    ],
)
def test_what_is_not_found(text: str) -> None:
    assert found(text) == []


async def test_entities_narrow_what_a_guard_looks_for() -> None:
    ctx = RequestContext()
    verdict = await pii(entities=["email"]).judge(["mail a@b.io, card 4242 4242 4242 4242"], ctx)
    assert verdict.texts == ["mail [EMAIL], card 4242 4242 4242 4242"]
    blocked = await pii("block").judge(["nothing here", "card 4242 4242 4242 4242"], ctx)
    assert not blocked.passed and blocked.reason == "found payment card number" and blocked.texts is None


async def test_forms_are_redacted_whole() -> None:
    text = "a 1-800-555-0199 b gb82 west 1234 5698 7654 32 c 4111.1111.1111.1111 d ip:2001:db8::1"
    verdict = await pii().judge([text], RequestContext())
    assert verdict.texts == ["a [PHONE] b [IBAN] c [CARD] d ip:[IP]"]


def test_unknown_entities_are_refused() -> None:
    with pytest.raises(ValueError, match="parameters.entities.0"):
        pii(entities=["passport"])
