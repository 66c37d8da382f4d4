"""Shared bits of the job boards' XML feeds: CDATA elements, location and salary text.

Two rules keep one job's text from breaking a whole feed (every board reads the feed as one
document, so one bad character would take every job off the board):

* **Characters XML 1.0 forbids** (https://www.w3.org/TR/xml/#charsets: everything but tab,
  LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF; so NUL, ESC and the other C0
  controls, lone surrogates, U+FFFE and U+FFFF) are removed; a vertical tab or form feed,
  which Word uses for a manual line or page break and which reaches the org in pasted text,
  becomes a line feed. lxml refuses such text ("All strings must be XML compatible"), and no
  XML parser would read the feed if it were written anyway. The org keeps the original text;
  JSON-LD (JSON can carry them) keeps it too.
* **A literal ``]]>``** in job text (a CDATA section cannot hold it) is carried by splitting
  the section, ``]]]]><![CDATA[>``: the parsed text is the job's text, unchanged. (Indeed
  wants no HTML entities, so escaping is not an option there.)
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from lxml import etree

log = logging.getLogger(__name__)

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'

#: What XML 1.0 does not allow (the complement of its ``Char`` production).
_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_BREAKS = str.maketrans({"\x0b": "\n", "\x0c": "\n"})
#: Where a CDATA section is split: a per-process random marker (private-use characters and
#: a nonce, so no job text can contain it), swapped for ``]]><![CDATA[`` after serializing.
_SPLIT = f"\ue000{secrets.token_hex(8)}\ue000"


def xml_text(value: Any) -> str:
    """``value`` as text an XML 1.0 document can carry (see the module's docstring)."""
    text = "" if value is None else str(value)
    return _FORBIDDEN.sub("", text.translate(_BREAKS))


def cdata(parent: etree._Element, tag: str, value: Any) -> etree._Element:
    """``<tag><![CDATA[value]]></tag>``, a literal ``]]>`` carried by splitting the section."""
    element = etree.SubElement(parent, tag)
    text = xml_text(value).replace(_SPLIT, "")
    element.text = etree.CDATA(text.replace("]]>", "]]" + _SPLIT + ">"))
    return element


@contextmanager
def job_element(root: etree._Element, job: Mapping[str, Any]) -> Iterator[etree._Element]:
    """A ``<job>`` under ``root`` for the block's elements; if rendering this one job fails
    (data no rule here foresaw), it is left out of the feed and logged by id, and the feed
    is still served with every other job: one job never takes a feed down."""
    node = etree.SubElement(root, "job")
    try:
        yield node
    except Exception as exc:
        root.remove(node)
        log.warning("feed: job %s left out (%s)", xml_text(job.get("id"))[:18], type(exc).__name__)


def plain(parent: etree._Element, tag: str, value: Any) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = xml_text(value)
    return element


def serialize(root: etree._Element) -> bytes:
    body = etree.tostring(root, encoding="utf-8", xml_declaration=False)
    return DECLARATION + body.replace(_SPLIT.encode(), b"]]><![CDATA[")


def location_text(job: Mapping[str, Any]) -> str:
    """LinkedIn's / Indeed Apply's location string: "City, State" in the US, else
    "City, Country" (LinkedIn XML feeds development guide, `location`)."""
    city = job.get("city") or ""
    country = str(job.get("country") or "")
    us = country.strip().lower() in ("united states", "us", "usa", "united states of america")
    second = job.get("state") if us and job.get("state") else country
    return ", ".join(p for p in (city, second) if p)


CURRENCY_SIGNS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€", "INR": "₹"}
PERIOD_WORDS = {"hourly": "per hour", "annual": "per year", "yearly": "per year"}


def salary_text(job: Mapping[str, Any]) -> str:
    """Indeed's ``<salary>`` as text, like its sample ``$70K per year``: ``$70,000 - $90,000
    per year``; empty when the job shows no salary."""
    low, high = job.get("salary_min"), job.get("salary_max")
    if low is None and high is None:
        return ""
    currency = str(job.get("salary_currency") or "")
    sign = CURRENCY_SIGNS.get(currency, currency + " " if currency else "")

    def money(value: Any) -> str:
        number = float(value)
        return f"{sign}{number:,.0f}" if number.is_integer() else f"{sign}{number:,.2f}"

    amounts = [money(v) for v in (low, high) if v is not None]
    if len(amounts) == 2 and amounts[0] == amounts[1]:
        amounts = amounts[:1]
    period = PERIOD_WORDS.get(str(job.get("salary_period") or "").strip().lower(), "")
    return " - ".join(amounts) + (f" {period}" if period else "")
