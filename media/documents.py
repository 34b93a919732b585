"""The text of a document: PDF, Word (DOCX), plain text, Markdown, CSV and source code, capped in length.

What comes out is bounded whatever comes in: at most `max_chars` characters, from at most `MAX_PDF_PAGES` pages;
a DOCX is opened as the zip it is, and refused when its parts would unpack to more than `MAX_UNPACKED` bytes or
declare XML entities (a zip bomb, a billion laughs). CPU-bound: call from a worker thread.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from xml.etree import ElementTree

from media.errors import NoText, Unreadable, Unsupported

log = logging.getLogger(__name__)

MAX_PDF_PAGES = 200
"""Pages read at most, however short they are: the cost of a PDF is bounded by pages, not only by characters."""
MAX_UNPACKED = 50 * 1024 * 1024
"""Largest a DOCX's text part may unpack to."""
TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".log",
        ".xml",
        ".html",
        ".htm",
        ".css",
        ".sql",
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".swift",
        ".m",
        ".rb",
        ".php",
        ".pl",
        ".lua",
        ".r",
        ".jl",
        ".sh",
        ".bash",
        ".zsh",
        ".fish",
        ".ps1",
        ".bat",
        ".dockerfile",
        ".makefile",
        ".gradle",
        ".tf",
        ".proto",
        ".graphql",
        ".vue",
        ".svelte",
        ".tex",
    ]
)
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True, slots=True)
class Extract:
    """The readable text of a document.

    Attributes:
        text: At most the cap's characters.
        kind: What it is, for the model and the user: "a 3-page PDF", "a Word document", "a text file".
        note: What was left out ("first 12 of 40 pages", "first 20,000 of 53,211 characters"), or None.
    """

    text: str
    kind: str
    note: str | None = None


def is_document(name: str, mime: str) -> bool:
    """Whether `extract` reads files of this name and type (the bytes may still disappoint)."""
    suffix = PurePath(name).suffix.lower()
    return (
        mime in ("application/pdf", DOCX_MIME)
        or mime.startswith("text/")
        or mime in ("application/json", "application/xml", "application/x-yaml", "application/x-sh")
        or suffix in TEXT_SUFFIXES
        or suffix in (".pdf", ".docx")
    )


def extract(data: bytes, name: str, mime: str, *, max_chars: int) -> Extract:
    """The text of a document, cut at `max_chars` characters with a note of what was left out.

    Args:
        data: The file.
        name: Its file name (the suffix decides the type where the platform gave a vague mime type).
        mime: The type the platform reported ("" when none).
        max_chars: MAX_DOCUMENT_CHARS.

    Raises:
        Unsupported: Not a type read here (an archive, a binary, an old .doc).
        Unreadable: Damaged, encrypted, or a zip/XML bomb.
        NoText: A PDF with no text layer.
    """
    suffix = PurePath(name).suffix.lower()
    if data.startswith(b"%PDF") or mime == "application/pdf" or suffix == ".pdf":
        return _pdf(data, name, max_chars)
    if mime == DOCX_MIME or suffix == ".docx":
        return _docx(data, name, max_chars)
    if is_document(name, mime) or not mime or mime == "application/octet-stream":
        return _plain(data, name, max_chars)
    raise Unsupported(f"I can't read {name}: I read photos, voice notes, PDF, Word, text and code files.")


def _pdf(data: bytes, name: str, max_chars: int) -> Extract:
    from pypdf import PdfReader  # here, not at the top: a bot start need not pay for it (a third of a second)

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable(f"I can't read {name}: the PDF is password-protected.")
        total = len(reader.pages)
        pieces: list[str] = []
        length = 0
        read = 0
        for page in reader.pages[:MAX_PDF_PAGES]:
            text = (page.extract_text() or "").strip()
            read += 1
            if text:
                pieces.append(text)
                length += len(text) + 2
            if length >= max_chars:
                break
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises PdfReadError, ValueError, KeyError, ... for damaged files
        log.info("unreadable PDF %s: %s", name, type(exc).__name__)
        raise Unreadable(f"I can't read {name}: the PDF is damaged or not a PDF.") from None
    text = "\n\n".join(pieces)
    if not text.strip():
        raise NoText(f"{name} has no text I can read: it looks like a scanned PDF (images of pages, no text layer).")
    pages = f"a {total}-page PDF" if total != 1 else "a 1-page PDF"
    note = f"first {read} of {total} pages" if read < total else None
    if len(text) > max_chars:
        text = text[:max_chars]
        note = note or f"first {max_chars:,} characters"
    return Extract(text, pages, note)


def _docx(data: bytes, name: str, max_chars: int) -> Extract:
    damaged = f"I can't read {name}: the Word file is damaged or not a .docx."
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > MAX_UNPACKED:
                raise Unreadable(f"I can't read {name}: it unpacks to far more than a document holds.")
            with archive.open(info) as part:
                xml = part.read(MAX_UNPACKED + 1)  # the declared size can lie; the read cannot
    except Unreadable:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError, RuntimeError):
        raise Unreadable(damaged) from None
    if len(xml) > MAX_UNPACKED:
        raise Unreadable(f"I can't read {name}: it unpacks to far more than a document holds.")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:  # Word never writes either; an entity bomb would
        raise Unreadable(damaged)
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        raise Unreadable(damaged) from None
    paragraphs: list[str] = []
    length = 0
    for paragraph in root.iter(f"{_W}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        paragraphs.append("".join(parts))
        length += len(paragraphs[-1]) + 1
        if length > max_chars:
            break
    text, note = _cut("\n".join(paragraphs).strip(), max_chars, whole=length <= max_chars)
    return Extract(text, "a Word document", note)


def _plain(data: bytes, name: str, max_chars: int) -> Extract:
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unsupported(f"I can't read {name}: it is not a text file (I read PDF, Word, text and code files).")
    shown, note = _cut(_decode(data), max_chars, whole=True)  # (decoding is linear, and the file is capped)
    return Extract(shown, "a text file", note)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def _cut(text: str, max_chars: int, *, whole: bool) -> tuple[str, str | None]:
    """`text` cut to `max_chars`, and the note saying so (`whole`: `text` is all there is, so its length is known)."""
    if len(text) <= max_chars and whole:
        return text, None
    if whole:
        return text[:max_chars], f"first {max_chars:,} of {len(text):,} characters"
    return text[:max_chars], f"first {max_chars:,} characters"
