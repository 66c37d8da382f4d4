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

Parsers rather than patterns where a format hides what a pattern would look for ([21]):

* **PDF** is read twice. As bytes, the way a viewer repairing a broken file may read them:
  names decoded (``/J#61vaScript`` is ``/JavaScript``) and every Flate stream inflated (object
  streams included), up to ``_PDF_SCAN_BYTES``. And with ``pypdf``: every object, those in
  compressed object streams (``/ObjStm``) included, each dictionary checked for active keys
  (``/JS``, ``/JavaScript``, ``/AA``, ``/XFA``, ``/EmbeddedFile``...) and each action's type:
  JavaScript, Launch, SubmitForm, ImportData, GoToR/GoToE (other files), Rendition and
  RichMedia are refused; a ``/URI`` action only to a web page, a mail address or a phone
  number (``http``, ``https``, ``mailto``, ``tel``: the links every CV has). A PDF encrypted
  with a password is refused (it cannot be checked); one pypdf cannot parse is judged by its
  bytes (viewers open many broken PDFs), unless they were too large to read whole.
* **DOCX** relationship parts are parsed with ``lxml`` (entities and network off): any
  external relationship but a web, mail or phone hyperlink is refused (the Follina
  ``oleObject`` ``mhtml:`` target, a remote ``attachedTemplate``, linked frames and images;
  a template named by a local drive path, as Word writes for a CV made from a template,
  fetches nothing and passes), and so is any ``altChunk`` (an imported HTML/RTF/MHT part).
  Field instructions (``w:instrText``, ``w:fldSimple``) are joined across runs and refused
  when they run DDE, DDEAUTO or INCLUDETEXT.
* **RTF** is what Word opens as RTF: a file starting ``{\\rt`` (Word does not check the ``f``).
* **TXT** is tokenised with the standard library's ``HTMLParser``: a start tag of an element
  a browser loads, runs or submits with (script, iframe, img, svg, video, details, form...,
  from ``lxml.html.defs``), or any tag with an ``on...`` handler or a link attribute (``href``,
  ``src``...), is markup; ``Map<A, B>`` or ``<b>`` in a CV is not.
"""

from __future__ import annotations

import bisect
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser

import olefile
from lxml import etree
from lxml.html import defs as html_defs
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

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
_RTF_OBJECT = re.compile(rb"\\obj(data|emb|link|autlink|sub|pub|ocx|class|name)|\\object")
_PDF_ACTIVE = re.compile(
    rb"/(JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|AA|SubmitForm|ImportData|GoToR|GoToE)"
    rb"(?![A-Za-z0-9])"
)
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n")
_PDF_URI = re.compile(rb"/URI\s*\(\s*([^)]*)")
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
    if data.startswith(b"{\\rt"):  # Word opens `{\rt1...` as RTF too
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
    if kind == PDF:
        return _pdf_problem(data)
    if kind == TXT and _is_markup(data):
        return "it is a web page or markup, not plain text"
    return None


# ---------------------------------------------------------------------------------------- PDF

#: Keys that make a dictionary active wherever they appear (names as pypdf decodes them).
_PDF_ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/AA", "/XFA", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia"}
)
#: Action types (``/S``) a resume has no use for.
_PDF_ACTIVE_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToR",
        "/GoToE",
        "/Rendition",
        "/RichMediaExecute",
        "/Movie",
        "/Sound",
    }
)
_SAFE_LINK = re.compile(r"^(https?://|mailto:|tel:)", re.I)
_NOT_A_CV_LINK = "it links to something other than a web page, a mail address or a phone number"
#: A resume has a few hundred objects; past this many the file is not one.
_PDF_MAX_OBJECTS = 100_000
_PDF_MAX_STREAMS = 10_000
#: Inflated stream bytes the byte reading looks at (memory per request stays bounded).
_PDF_SCAN_BYTES = 16 * 1024 * 1024


def _pdf_problem(data: bytes) -> str | None:
    """Two readings, both must be clean. The bytes as a viewer in repair mode may read them
    (names decoded, every Flate stream inflated, no structure trusted), then the structure as
    pypdf parses it. A file pypdf cannot parse is judged by the first reading alone: viewers
    open many broken PDFs, and refusing them would refuse real CVs."""
    why, complete = _pdf_bytes_problem(data)
    if why:
        return why
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return "it is encrypted with a password, so it cannot be checked"
        for obj in _pdf_objects(reader):
            why = _pdf_dictionary_problem(obj)
            if why:
                return why
    except _TooManyObjects:
        return "it has too many objects for a resume"
    except Exception:  # pypdf raises PdfReadError, ValueError, KeyError... on malformed files
        # judged by its bytes above, when they could all be read
        return None if complete else "it is not a readable PDF"
    return None


def _pdf_bytes_problem(data: bytes) -> tuple[str | None, bool]:
    """(why not, whether every stream was read): past ``_PDF_SCAN_BYTES`` of inflated streams
    (the images of a scan inflate that far) the reading stops, and pypdf's reading decides."""
    why = _pdf_text_problem(data)
    if why:
        return why, True
    budget = _PDF_SCAN_BYTES
    # Each stream's bytes run to the next `endstream` (found once, for the whole file), so a
    # file of many `stream` keywords costs one pass, not one pass per keyword.
    ends = [m.start() for m in re.finditer(rb"endstream", data)]
    view = memoryview(data)
    for count, match in enumerate(_PDF_STREAM.finditer(data)):
        if count >= _PDF_MAX_STREAMS:
            return "it has too many objects for a resume", True
        following = bisect.bisect_left(ends, match.end())
        stop = ends[following] if following < len(ends) else len(data)
        inflated = _inflate(view[match.end() : stop], budget)
        if inflated is None:
            continue
        why = _pdf_text_problem(inflated)
        if why:
            return why, True
        budget -= len(inflated)
        if budget <= 0:
            return None, False
    return None, True


def _pdf_text_problem(part: bytes) -> str | None:
    named = _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), part)
    if _PDF_ACTIVE.search(named):
        return "it carries JavaScript, an action or an embedded file"
    for target in _PDF_URI.findall(named):
        if not _SAFE_LINK.match(target.decode("latin-1").strip()):
            return _NOT_A_CV_LINK
    return None


def _inflate(stream: memoryview, budget: int) -> bytes | None:
    """The Flate-decoded stream, at most `budget` bytes (a byte more says "over"); None when
    it is not a zlib stream. Fed 64 KB at a time: zlib copies the input it does not use."""
    if len(stream) < 2 or stream[0] & 0x0F != 8 or (stream[0] * 256 + stream[1]) % 31:
        return None  # no zlib header (RFC 1950): not Flate, or not only Flate
    inflater = zlib.decompressobj()
    out: list[bytes] = []
    size, position = 0, 0
    try:
        while position < len(stream) and not inflater.eof and size <= budget:
            piece = inflater.decompress(stream[position : position + 65536], budget + 1 - size)
            position += 65536 - len(inflater.unconsumed_tail)
            out.append(piece)
            size += len(piece)
            if inflater.unconsumed_tail:  # the budget is spent
                break
    except zlib.error:
        pass  # a corrupt stream: what came out before the error is still read
    return b"".join(out)


class _TooManyObjects(Exception):
    pass


def _pdf_objects(reader: PdfReader):
    """Every indirect object of the file, those in object streams included (pypdf's xref
    tables list both), each read once."""
    ids: set[tuple[int, int]] = set()
    for generation, table in reader.xref.items():
        ids.update((number, generation) for number in table)
    ids.update((number, 0) for number in reader.xref_objStm)
    if len(ids) > _PDF_MAX_OBJECTS:
        raise _TooManyObjects
    yield reader.trailer
    for number, generation in sorted(ids):
        obj = reader.get_object(IndirectObject(number, generation, reader))
        if obj is not None:
            yield obj


def _pdf_dictionary_problem(obj) -> str | None:
    """Walks one object's direct dictionaries and arrays (indirect ones are walked on their
    own by :func:`_pdf_objects`)."""
    stack = [obj]
    seen = 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > _PDF_MAX_OBJECTS:
            raise _TooManyObjects
        if isinstance(item, DictionaryObject):
            keys = {str(k) for k in item}
            if keys & _PDF_ACTIVE_KEYS:
                return "it carries JavaScript, an action or an embedded file"
            action = item.get("/S")
            if not isinstance(action, IndirectObject) and str(action) in _PDF_ACTIVE_ACTIONS:
                return "it carries JavaScript, an action or an embedded file"
            if str(action) == "/URI":
                target = item.get("/URI")
                if isinstance(target, IndirectObject):
                    target = target.get_object()
                text = target.decode("latin-1") if isinstance(target, bytes) else str(target)
                if not _SAFE_LINK.match(text.strip()):
                    return _NOT_A_CV_LINK
            stack.extend(v for v in item.values() if not isinstance(v, IndirectObject))
        elif isinstance(item, ArrayObject):
            stack.extend(v for v in item if not isinstance(v, IndirectObject))
    return None


# ---------------------------------------------------------------------------------------- TXT


#: Elements a browser loads, runs or submits with (lxml's HTML vocabulary), beyond the
#: `on...` handlers and link attributes every element can carry. Plain formatting such as
#: `<b>` or a generic type's `Map<A, B>` is not among them.
_ACTIVE_TAGS = (
    html_defs.head_tags
    | html_defs.top_level_tags
    | html_defs.form_tags
    | html_defs.frame_tags
    | {"iframe", "object", "embed", "applet", "img", "image", "svg", "math", "video", "audio"}
    | {"source", "track", "canvas", "template", "marquee", "details", "portal", "use"}
)


class _MarkupFinder(HTMLParser):
    """Notes the first start tag that a browser would act on."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found = False

    def handle_starttag(self, tag, attrs) -> None:
        if tag in _ACTIVE_TAGS or any(
            name.startswith("on") or name in html_defs.link_attrs for name, _ in attrs
        ):
            self.found = True

    handle_startendtag = handle_starttag

    def handle_decl(self, decl) -> None:
        self.found = True

    def handle_pi(self, data) -> None:
        self.found = True


def _is_markup(data: bytes) -> bool:
    data = data.replace(b"\x00", b"")
    if _MARKUP.search(data):
        return True
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8-sig", errors="replace")
    finder = _MarkupFinder()
    try:
        finder.feed(text)
        finder.close()
    except Exception:  # HTMLParser is lenient; anything it still chokes on is not plain text
        return True
    return finder.found


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
            for entry in entries:
                why = _docx_part_problem(archive, entry.filename)
                if why:
                    return why
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, etree.XMLSyntaxError):
        return "it is not a readable DOCX"
    return None


_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_W_NS = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HYPERLINK = "/relationships/hyperlink"
_TEMPLATE = "/relationships/attachedTemplate"
#: A document made from a Word template names it by its path on the author's disk; nothing is
#: fetched. A template on a server (http, a UNC share, file://host/) is the injection.
_LOCAL_TEMPLATE = re.compile(r"^file:///[A-Za-z]:[\\/]", re.I)
_ALT_CHUNK = "/relationships/aFChunk"
_DANGEROUS_FIELD = re.compile(r"\b(DDE|DDEAUTO|INCLUDETEXT)\b", re.I)
_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _docx_part_problem(archive: zipfile.ZipFile, name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".rels"):
        root = etree.fromstring(archive.read(name), _XML)
        for rel in root.iter(_REL_NS + "Relationship"):
            kind = rel.get("Type") or ""
            if kind.endswith(_ALT_CHUNK):
                return "it imports another document (altChunk)"
            if (rel.get("TargetMode") or "").lower() != "external":
                continue
            target = (rel.get("Target") or "").strip()
            if kind.endswith(_TEMPLATE) and _LOCAL_TEMPLATE.match(target):
                continue
            if not (kind.endswith(_HYPERLINK) and _SAFE_LINK.match(target)):
                return "it loads something from outside the file (an external relationship)"
    elif lowered.startswith("word/") and lowered.endswith(".xml"):
        root = etree.fromstring(archive.read(name), _XML)
        instructions = "".join(el.text or "" for el in root.iter(_W_NS + "instrText"))
        instructions += " ".join(
            el.get(_W_NS + "instr") or "" for el in root.iter(_W_NS + "fldSimple")
        )
        if _DANGEROUS_FIELD.search(instructions):
            return "it runs a field that starts programs or loads files (DDE, INCLUDETEXT)"
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
