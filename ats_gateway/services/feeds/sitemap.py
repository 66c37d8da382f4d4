"""Sitemaps of the public job pages (sitemaps.org protocol 0.9), built with lxml.

Source: https://www.sitemaps.org/protocol.html (read here from copies of the page and of its
XSD ``sitemap-v0.9.xsd`` / ``siteindex.xsd``). ``<urlset xmlns="http://www.sitemaps.org/
schemas/sitemap/0.9">`` with one ``<url><loc/><lastmod/></url>`` per page; ``lastmod`` is a
W3C Datetime. At most 50,000 URLs and 50 MB (52,428,800 bytes) uncompressed per file; more
URLs go into several files listed by a ``<sitemapindex>`` (up to 50,000 sitemaps). Google
re-crawls sitemap URLs whose ``lastmod`` is newer than its last crawl and ignores
``changefreq`` / ``priority`` (not confirmed from Google here), so we send neither.

The 50 MB bound is not enforced: a job page URL is short, 50,000 of them are far below it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
MAX_URLS = 50_000
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True)
class Entry:
    loc: str
    lastmod: str | None = None  # W3C Datetime: "2026-01-15" or "2026-01-15T09:30:00+00:00"


def w3c_datetime(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def urlset(entries: Sequence[Entry]) -> bytes:
    root = etree.Element(f"{{{NS}}}urlset", nsmap={None: NS})
    for entry in entries:
        url = etree.SubElement(root, f"{{{NS}}}url")
        etree.SubElement(url, f"{{{NS}}}loc").text = entry.loc
        if entry.lastmod:
            etree.SubElement(url, f"{{{NS}}}lastmod").text = entry.lastmod
    return DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def sitemapindex(entries: Sequence[Entry]) -> bytes:
    root = etree.Element(f"{{{NS}}}sitemapindex", nsmap={None: NS})
    for entry in entries:
        item = etree.SubElement(root, f"{{{NS}}}sitemap")
        etree.SubElement(item, f"{{{NS}}}loc").text = entry.loc
        if entry.lastmod:
            etree.SubElement(item, f"{{{NS}}}lastmod").text = entry.lastmod
    return DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def build(
    entries: Sequence[Entry],
    *,
    part_url: str,
    lastmod: str,
    max_urls: int = MAX_URLS,
) -> dict[str, bytes]:
    """``{"sitemap.xml": ...}`` and, above ``max_urls`` entries, ``sitemap.xml`` as an index
    of parts ``sitemap-1.xml``, ``sitemap-2.xml``, ... (``part_url`` has a ``{n}``)."""
    if len(entries) <= max_urls:
        return {"sitemap.xml": urlset(entries)}
    files: dict[str, bytes] = {}
    parts: list[Entry] = []
    for n, start in enumerate(range(0, len(entries), max_urls), start=1):
        files[f"sitemap-{n}.xml"] = urlset(entries[start : start + max_urls])
        parts.append(Entry(part_url.replace("{n}", str(n)), lastmod))
    files["sitemap.xml"] = sitemapindex(parts)
    return files
