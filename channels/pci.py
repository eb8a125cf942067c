"""PCI DSS helpers: mask card numbers to the last 4 digits, drop security codes, scrub logs."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

MASK = "XXXXXXXXXXXX"

# Keys compared after lower-casing and dropping "_", "-" and namespaces. OTA `CardCode` /
# EQC `cardCode` is the card *brand* (VI, MC), not a security code, so it is kept.
_SECURITY_KEYS = frozenset(
    {
        "seriescode",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cid",
        "csc",
        "securitycode",
        "cardsecuritycode",
        "cardverificationcode",
        "cardverificationvalue",
        "cardcvv",
        "cardcvc",
    }
)
_NUMBER_KEYS = frozenset(
    {"cardnumber", "cardno", "pan", "creditcardnumber", "ccnumber", "accountnumber", "number"}
)
# `number` alone is only a card number inside a card-ish parent; see scrub_mapping.
_CARD_PARENTS = ("card", "payment", "guarantee", "creditcard")

# 13-19 digits, optionally grouped by spaces or dashes, not glued to other digits.
_NON_DIGITS = re.compile(r"\D")
_DIGIT_RUN = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")


@functools.lru_cache(maxsize=1024)
def _norm(key: str) -> str:
    if "}" in key:
        key = key.rsplit("}", 1)[1]
    return key.replace("_", "").replace("-", "").lower()


def is_security_code_key(key: str) -> bool:
    """True for CVV/SeriesCode-like field names, which must never be stored."""
    return _norm(key) in _SECURITY_KEYS


def last4(number: str | None) -> str | None:
    """The last 4 digits of a card number, or None when it has fewer than 4 digits."""
    if not number:
        return None
    digits = number if number.isdigit() else _NON_DIGITS.sub("", number)
    return digits[-4:] if len(digits) >= 4 else None


def mask_card_number(number: str | None) -> str | None:
    """Mask a card number to its last 4 digits (length hidden too)."""
    if number is None:
        return None
    tail = last4(number)
    return MASK + tail if tail else MASK


def luhn_ok(digits: str) -> bool:
    """Luhn checksum, used to tell card numbers from other long digit runs."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_match(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return MASK + digits[-4:]
    return match.group(0)


def scrub_text(text: str) -> str:
    """Mask every card-number-looking (Luhn-valid, 13-19 digit) run in a string."""
    if not text:
        return text
    return _DIGIT_RUN.sub(_mask_match, text)


def scrub_mapping(data: Any, *, _card_context: bool = False) -> Any:
    """Copy of a dict/list tree with card numbers masked and security codes dropped."""
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            name = _norm(str(key))
            if name in _SECURITY_KEYS:
                continue
            if name in _NUMBER_KEYS and (name != "number" or _card_context) and value is not None:
                out[key] = mask_card_number(str(value))
                continue
            in_card = _card_context or any(part in name for part in _CARD_PARENTS)
            out[key] = scrub_mapping(value, _card_context=in_card)
        return out
    if isinstance(data, list | tuple):
        return [scrub_mapping(item, _card_context=_card_context) for item in data]
    if isinstance(data, str):
        return scrub_text(data)
    return data


@functools.lru_cache(maxsize=1024)
def _kind(key: str) -> int:
    """0 = keep, 1 = card number (mask), 2 = security code (drop)."""
    name = _norm(key)
    if name in _SECURITY_KEYS:
        return 2
    return 1 if name in _NUMBER_KEYS and name != "number" else 0


def scrub_card_element(element: etree._Element) -> str | None:
    """Mask card-number attributes/children of one card element in place, drop security codes.

    Returns the last 4 digits of the card number found, if any.
    """
    found: str | None = None
    attrib = element.attrib
    # items() reads every attribute in one call; attrib[key] lookups cost one call each.
    for key, value in element.items():
        kind = _kind(key)
        if kind == 2:
            del attrib[key]
        elif kind == 1:
            tail = last4(value)
            found = found or tail
            attrib[key] = MASK + tail if tail else MASK
    if len(element):
        for child in list(element):
            if not isinstance(child.tag, str):
                continue
            kind = _kind(child.tag)
            if kind == 2:
                element.remove(child)
            elif kind == 1 and child.text:
                found = found or last4(child.text)
                child.text = mask_card_number(child.text)
            else:
                found = scrub_card_element(child) or found
    return found


def scrub_xml(root: etree._Element) -> str | None:
    """Scrub every element of a tree in place (generic, slower); returns the first card's last 4."""
    found: str | None = None
    for element in list(root.iter()):
        if not isinstance(element.tag, str):
            continue
        for key in list(element.attrib):
            name = _norm(key)
            if name in _SECURITY_KEYS:
                del element.attrib[key]
            elif name in _NUMBER_KEYS and name != "number":
                found = found or last4(element.attrib[key])
                element.attrib[key] = mask_card_number(element.attrib[key]) or MASK
        name = _norm(element.tag)
        parent = element.getparent()
        if name in _SECURITY_KEYS and parent is not None:
            parent.remove(element)
        elif name in _NUMBER_KEYS and name != "number" and element.text:
            found = found or last4(element.text)
            element.text = mask_card_number(element.text)
    return found
