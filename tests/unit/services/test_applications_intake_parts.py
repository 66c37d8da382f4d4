"""Pure parts of intake: resume sniffing, dedupe query URLs, fingerprints."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote

import pytest

from ats_gateway.salesforce.soql import inspect
from ats_gateway.services.applications.intake import fingerprint
from ats_gateway.services.applications.org import URI_LIMIT, dedupe_queries
from ats_gateway.services.applications.resume import (
    ResumeRejected,
    check_resume,
    safe_filename,
    sniff,
)

ALL = ("pdf", "doc", "docx", "rtf", "txt")


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", "MZ")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 32, "doc"),
        (_docx(), "docx"),
        (b"{\\rtf1\\ansi Hello}", "rtf"),
        ("Ünïcode résumé\nline two\t\n".encode(), "txt"),
        ("résumé".encode("utf-16"), "txt"),
        (b"MZ\x90\x00\x03\x00", None),  # a Windows executable
        (_zip(), None),  # a zip that is not a Word document
        (b"\x89PNG\r\n\x1a\n", None),
        (b"text with a \x00 NUL", None),
    ],
)
def test_sniff_by_magic_bytes(data, kind):
    assert sniff(data) == kind


def test_check_resume_judges_content_not_name():
    resume = check_resume(b"%PDF-1.4", "cv.docx", max_bytes=100, allowed=ALL)
    assert resume.kind == "pdf" and resume.filename == "cv.pdf"
    assert resume.media_type == "application/pdf"
    with pytest.raises(ResumeRejected) as too_big:
        check_resume(b"%PDF-" + b"0" * 100, "cv.pdf", max_bytes=100, allowed=ALL)
    assert too_big.value.code == "too_large"
    with pytest.raises(ResumeRejected) as empty:
        check_resume(b"", "cv.pdf", max_bytes=100, allowed=ALL)
    assert empty.value.code == "empty"
    with pytest.raises(ResumeRejected) as not_allowed:
        check_resume(b"plain text", "cv.txt", max_bytes=100, allowed=("pdf",))
    assert not_allowed.value.code == "unsupported_type"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd.txt"),
        ("C:\\Users\\me\\My CV.PDF", "My CV.txt"),
        (None, "resume.txt"),
        ("<script>.txt", "script.txt"),
    ],
)
def test_safe_filename(name, safe):
    assert safe_filename(name, "txt") == safe


def test_dedupe_queries_stay_under_the_uri_limit_and_cover_every_email():
    emails = [
        f"candidate.number.{i:04d}+tag@some-long-domain-name.example.com" for i in range(1000)
    ]
    jobs = [f"a0M5g00000000{i:02d}EAA" for i in range(10)]
    queries = dedupe_queries(emails, jobs)
    assert 1 < len(queries) <= 10
    seen = []
    for soql in queries:
        url = "/services/data/v62.0/query?q=" + quote(soql, safe="")
        assert len(url) < URI_LIMIT - 256
        shape = inspect(soql)
        assert shape.sobject == "Contact"
        seen.extend(e for e in emails if f"'{e}'" in soql)
    assert sorted(seen) == sorted(emails)  # each email in exactly one query


def test_dedupe_query_escapes_quotes_in_emails():
    [soql] = dedupe_queries(["o'brien@example.com"], ["a0M5g0000000001EAA"])
    assert "'o\\'brien@example.com'" in soql
    assert inspect(soql).sobject == "Contact"


def test_a_typical_batch_of_1000_needs_one_composite_of_queries():
    emails = [f"ada.lovelace.{i}@example.com" for i in range(1000)]
    assert len(dedupe_queries(emails, ["a0M5g0000000001EAA"])) <= 5


def test_fingerprint_ignores_key_order_but_not_values_or_resume():
    from ats_gateway.services.applications import ResumeUpload

    assert fingerprint({"a": 1, "b": 2}, None) == fingerprint({"b": 2, "a": 1}, None)
    assert fingerprint({"a": 1}, None) != fingerprint({"a": 2}, None)
    assert fingerprint({"a": 1}, ResumeUpload(b"x")) != fingerprint({"a": 1}, ResumeUpload(b"y"))
