"""Resumes judged by what they contain: bombs, macros, embedded programs and disguised markup
are refused at intake (422), before anything is stored or uploaded to the org."""

from __future__ import annotations

import base64
import io
import uuid
import zipfile

import pytest

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
DOCUMENT_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats'
    b'.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Ada</w:t></w:r></w:p></w:body>'
    b"</w:document>"
)


def docx(extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", DOCUMENT_XML)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _submit(stack, data: bytes, filename: str):
    body = {
        "job_id": stack.job_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada.{uuid.uuid4().hex}@security.example.com",
        "consent": True,
        "resume": {"filename": filename, "content_base64": base64.b64encode(data).decode()},
    }
    return stack.post("/v1/applications", json=body, headers=stack.auth(stack.sk), timeout=30)


HOSTILE = {
    "zip bomb": (docx({"word/media/pad.bin": b"\0" * 60_000_000}), "cv.docx"),
    "vba macros": (docx({"word/vbaProject.bin": OLE2 + b"\0" * 512}), "cv.docx"),
    "embedded program": (
        docx({"word/embeddings/oleObject1.bin": OLE2 + b"MZ\x90\x00" + b"\0" * 512}),
        "cv.docx",
    ),
    "ole junk": (OLE2 + bytes(range(256)) * 8, "cv.doc"),
    "html as text": (
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "cv.txt",
    ),
    "svg as text": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "cv.txt"),
    "script tag in text": (b"Ada Lovelace\n<script>fetch('//x')</script>\n", "cv.txt"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_resume_is_refused(security_stack, case):
    data, filename = HOSTILE[case]
    assert len(data) < 5_000_000
    r = _submit(security_stack, data, filename)
    assert r.status_code == 422, (case, r.text[:300])
    assert any(e["field"] == "resume" for e in r.json()["errors"]), r.json()


@pytest.mark.parametrize(
    "data,filename",
    [
        (docx(), "cv.docx"),
        (b"Ada Lovelace\nAnalyst, 1843 <ada@example.com>\n", "cv.txt"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "cv.pdf"),
    ],
)
def test_ordinary_resumes_still_pass(security_stack, data, filename):
    r = _submit(security_stack, data, filename)
    assert r.status_code == 202, r.text[:300]
