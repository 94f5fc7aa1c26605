"""``pii``: personal data by pattern, each candidate checked where a checksum exists.

Entities: ``email`` (at most 64 characters before the ``@``, as RFC 5321 allows, so that a long word
is not held back on a stream as a possible address), ``phone`` (international ``+...``, North
American with or without a leading ``1``, and national numbers with a leading 0, 8 to 15 digits;
plain runs of digits are not phone numbers), ``payment_card`` (13 to 19 digits passing the Luhn check,
grouped by spaces or dashes, or 4.4.4.4 and 4.6.5 by dots), ``iban`` (the country's length where known,
and the mod-97 check; written in lower case or grouped by spaces or dashes, the country must be a known
one), ``ip_address`` (IPv4 and IPv6, checked by :mod:`ipaddress`) and ``us_ssn`` (``123-45-6789``,
without the numbers the SSA never issues). Redaction writes ``[EMAIL]``, ``[PHONE]``, ``[CARD]``, ``[IBAN]``,
``[IP]`` and ``[SSN]``. Names, addresses and free-form identifiers need a model: an ``llm_judge``.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

import regex
from pydantic import Field

from relaygate.guards.base import GuardEnv, GuardSpec, Parameters, parse_parameters
from relaygate.guards.patterns import Detector, PatternGuard

__all__ = ["ENTITIES", "PiiGuard", "iban_valid", "ipv6_valid", "luhn_valid", "phone_valid"]

Entity = Literal["email", "phone", "payment_card", "iban", "ip_address", "us_ssn"]

# IBAN lengths by country (ISO 13616 registry); other countries get the mod-97 check alone.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(candidate: str) -> bool:
    """A payment card number: 13 to 19 digits (spaces and dashes aside) whose Luhn sum ends in 0."""
    digits = [int(char) for char in candidate if char.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False  # "0000 0000 0000 0000" passes Luhn but is no card
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """An IBAN: the country's length when known, and the number read as base 36 leaving 1 modulo 97.

    Written other than as ``GB82 WEST 1234 ...`` (lower case, or spaced after the country), the country
    must be a known one: ``on 12 june 2024 will`` then is no IBAN, whatever its checksum.
    """
    iban = candidate.replace(" ", "").replace("-", "").upper()
    if not 15 <= len(iban) <= 34 or not iban.isalnum():
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None and not (candidate[:2].isupper() and candidate[2:4].isdigit()):
        return False
    if expected is not None and expected != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def phone_valid(candidate: str) -> bool:
    return 8 <= sum(char.isdigit() for char in candidate) <= 15


def ipv6_valid(candidate: str) -> bool:
    if sum(char.isalnum() for char in candidate) < 2:
        return False  # "::" and "a::" are addresses in theory, punctuation in prose
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


_DIGIT = regex.compile(r"\d")


def _has_digit(text: str) -> bool:
    # One scan in C: a Python loop over every character showed up in the benchmark's profile.
    return _DIGIT.search(text) is not None


ENTITIES: dict[str, list[Detector]] = {
    "email": [
        Detector(
            "e-mail address",
            regex.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,63}"),
            "[EMAIL]",
            hint=lambda text: "@" in text,
        )
    ],
    "payment_card": [
        Detector(
            "payment card number",
            # Not inside a longer number, nor after a decimal point (3.14159265358979 is no card).
            regex.compile(
                r"(?<![\d\-]|\d\.)(?:\d(?:[ \-]?\d){12,18}|\d{4}(?:\.\d{4}){3}|\d{4}\.\d{6}\.\d{5})(?![\d\-]|\.\d)"
            ),
            "[CARD]",
            check=luhn_valid,
            hint=_has_digit,
        )
    ],
    "iban": [
        Detector(
            "IBAN",
            regex.compile(r"(?i)\b[A-Z]{2} ?\d{2}(?:[ \-]?[A-Z0-9]{4}){2,7}(?:[ \-]?[A-Z0-9]{1,4})?\b"),
            "[IBAN]",
            check=iban_valid,
            hint=_has_digit,
        )
    ],
    "us_ssn": [
        Detector(
            "US social security number",
            regex.compile(r"(?<![\d\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d\-])"),
            "[SSN]",
            hint=lambda text: "-" in text,
        )
    ],
    "phone": [
        Detector(
            "phone number",
            regex.compile(
                r"(?<![\w+])(?:\+\d[\d .()\-]{6,20}\d"  # international
                r"|(?:1[ .\-]?)?(?:\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"  # North American
                r"|0[1-9]\d{0,3}(?:[ .\-]\d{2,4}){2,4})"  # national, with a trunk 0
                r"(?!\d)"
            ),
            "[PHONE]",
            check=phone_valid,
            hint=_has_digit,
        )
    ],
    "ip_address": [
        Detector(
            "IP address",
            regex.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)"),
            "[IP]",
            hint=lambda text: "." in text,
        ),
        Detector(
            "IP address",
            # Not inside a word or a longer address; but after a label's colon (ip:2001:db8::1).
            regex.compile(
                r"(?<!\w)(?<!::)(?<!(?<!\w)[0-9A-Fa-f]{1,4}:)(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"
            ),
            "[IP]",
            check=ipv6_valid,
            hint=lambda text: "::" in text or text.count(":") >= 7,
        ),
    ],
}


class PiiParameters(Parameters):
    entities: list[Entity] = Field(default_factory=lambda: list(ENTITIES), min_length=1)  # type: ignore[arg-type]


# Every entity's pattern needs a digit (cards, IBANs, SSNs, phone numbers, IPv4), an @ (e-mail) or a colon
# (IPv6): a text with none of them is not run through each entity's pattern.
PRECHECK = regex.compile(r"[\d@:]")


class PiiGuard(PatternGuard):
    type = "pii"
    precheck = PRECHECK

    def __init__(self, spec: GuardSpec, env: GuardEnv) -> None:
        super().__init__(spec, env)
        self.parameters = parse_parameters(PiiParameters, spec.parameters)
        wanted = set(self.parameters.entities)
        # In ENTITIES' order, so that where two overlap (a card number and a phone number) the more
        # specific one names and redacts it.
        self.detectors = [detector for name, detectors in ENTITIES.items() if name in wanted for detector in detectors]
