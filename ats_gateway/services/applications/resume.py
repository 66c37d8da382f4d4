"""Resume files: what they are is decided by their bytes, never by the name or Content-Type.

A client's ``Content-Type`` and file extension are hints that anyone can forge; the magic bytes
at the start of the file are what Salesforce (and the recruiter opening it) will actually get.

Then the content is judged (:func:`unsafe_content`), because a recruiter opens these files on
a work machine: a DOCX must expand to at most ``MAX_EXPANDED_BYTES`` at a ratio of at most
``MAX_RATIO`` (zip bombs) and carry no VBA project, embedded object, ActiveX control or
macro-enabled content type; a DOC must be a well-formed OLE2 compound file with a Word stream
(``olefile``) and no macro storage or embedded object pool; an RTF no embedded object; a PDF no
JavaScript, launch action or embedded file; a text file no HTML, SVG or XML markup (a "CV.txt"
that a browser would render as a page with script).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import olefile

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

MAX_EXPANDED_BYTES = 50 * 1024 * 1024
MAX_RATIO = 100
_DOCX_ACTIVE = re.compile(
    r"(^|/)(vbaProject\.bin|vbaData\.xml)$|(^|/)(embeddings|activeX)/|\.(exe|dll|com|scr|bat|cmd|js|vbs|ps1|jar|msi)$",
    re.I,
)
_MACRO_TYPES = re.compile(rb"macroEnabled|vbaProject|ms-office\.activeX", re.I)
_OLE_ACTIVE = ("macros", "_vba_project_cur", "vba", "objectpool")
_RTF_OBJECT = re.compile(rb"\\obj(data|emb|link|autlink|sub|pub|ocx)\b|\\object\b")
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|RichMedia|XFA)\b")
_MARKUP = re.compile(
    rb"<\s*(script|html|svg|iframe|object|embed|body|head|meta|link|style|form|img|base)\b"
    rb"|<!doctype|<\?xml|javascript\s*:|\bon[a-z]+\s*=\s*[\"']",
    re.I,
)


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
    why = unsafe_content(data, kind)
    if why is not None:
        raise ResumeRejected("unsafe_content", f"The resume is refused: {why}.")
    return Resume(data=data, kind=kind, filename=safe_filename(filename, kind))


def unsafe_content(data: bytes, kind: str) -> str | None:
    """Why a file of type `kind` must not reach a recruiter (see the module docstring)."""
    if kind == DOCX:
        return _docx_problem(data)
    if kind == DOC:
        return _doc_problem(data)
    if kind == RTF and _RTF_OBJECT.search(data):
        return "it embeds an object"
    if kind == PDF and _PDF_ACTIVE.search(data):
        return "it carries JavaScript, an action or an embedded file"
    if kind == TXT and _MARKUP.search(data.replace(b"\x00", b"")):
        return "it is a web page or markup, not plain text"
    return None


def _docx_problem(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            expanded = 0
            for entry in entries:
                expanded += entry.file_size
                if expanded > MAX_EXPANDED_BYTES:
                    return "it expands to more than 50 MB"
                if entry.file_size > MAX_RATIO * max(entry.compress_size, 1) + 1024:
                    return "it is compressed suspiciously well (a zip bomb)"
                if _DOCX_ACTIVE.search(entry.filename):
                    return "it carries macros, an embedded object or a program"
            if "[Content_Types].xml" in archive.namelist():
                with archive.open("[Content_Types].xml") as types:
                    if _MACRO_TYPES.search(types.read(1024 * 1024)):
                        return "it is a macro-enabled document"
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "it is not a readable DOCX"
    return None


def _doc_problem(data: bytes) -> str | None:
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            names = {"/".join(path).lower() for path in ole.listdir(streams=True, storages=True)}
    except Exception:  # olefile raises OSError, ValueError, IndexError... on junk
        return "it is not a well-formed Word document"
    if "worddocument" not in names:
        return "it is not a Word document"
    for name in names:
        if any(part in _OLE_ACTIVE for part in name.split("/")):
            return "it carries macros or an embedded object"
    return None
