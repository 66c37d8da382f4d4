"""Shared bits of the job boards' XML feeds: CDATA elements, location and salary text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


def cdata(parent: etree._Element, tag: str, value: Any) -> etree._Element:
    """``<tag><![CDATA[value]]></tag>``; a literal ``]]>`` (which CDATA cannot hold) is
    broken up as ``]] >`` rather than entity-escaped (Indeed: no HTML entities)."""
    element = etree.SubElement(parent, tag)
    text = "" if value is None else str(value)
    element.text = etree.CDATA(text.replace("]]>", "]] >"))
    return element


def plain(parent: etree._Element, tag: str, value: Any) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.text = "" if value is None else str(value)
    return element


def serialize(root: etree._Element) -> bytes:
    return DECLARATION + etree.tostring(root, encoding="utf-8", xml_declaration=False)


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
