"""Resume files: what they are is decided by their bytes, never by the name or Content-Type.

A client's ``Content-Type`` and file extension are hints that anyone can forge; the magic bytes
at the start of the file are what Salesforce (and the recruiter opening it) will actually get.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

PDF, DOC, DOCX, RTF, TXT = "pdf", "doc", "docx", "rtf", "txt"

MEDIA_TYPES = {
    PDF: "application/pdf",
    DOC: "application/msword",
    DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    RTF: "application/rtf",
    TXT: "text/plain",
}

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word 97-2003 (and other OLE compound files)
_ZIP = b"PK\x03\x04"
_TEXT_CONTROLS = set(range(32)) - {9, 10, 12, 13}


@dataclass(frozen=True)
class Resume:
    """A checked resume: its bytes, the type its bytes say, and a safe file name."""

    data: bytes
    kind: str
    filename: str

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.kind]


class ResumeRejected(ValueError):
    """The file is not acceptable; ``code`` is ``too_large``, ``empty`` or ``unsupported_type``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sniff(data: bytes) -> str | None:
    """The resume type the bytes show (pdf, doc, docx, rtf, txt), or None."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(_OLE2):
        return DOC
    if data.startswith(b"{\\rtf"):
        return RTF
    if data.startswith(_ZIP):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            return None
        return DOCX if "word/document.xml" in names else None
    return TXT if _is_text(data) else None


def _is_text(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return False
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return False
    return not any(ord(ch) in _TEXT_CONTROLS for ch in text)


def safe_filename(name: str | None, kind: str) -> str:
    """A file name without paths or odd characters, ending in the detected type's extension."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in stem).strip(" ._")
    return f"{(stem or 'resume')[:200]}.{kind}"


def check_resume(
    data: bytes, filename: str | None, *, max_bytes: int, allowed: tuple[str, ...]
) -> Resume:
    """Accept ``data`` as a resume or raise :class:`ResumeRejected` saying why."""
    if len(data) > max_bytes:
        raise ResumeRejected(
            "too_large", f"The resume is {len(data)} bytes; at most {max_bytes} are accepted."
        )
    if not data:
        raise ResumeRejected("empty", "The resume file is empty.")
    kind = sniff(data)
    if kind is None or kind not in allowed:
        raise ResumeRejected(
            "unsupported_type",
            "The resume must be one of: "
            + ", ".join(t.upper() for t in allowed)
            + " (judged by the file's content, not its name).",
        )
    return Resume(data=data, kind=kind, filename=safe_filename(filename, kind))
