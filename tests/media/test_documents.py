"""Documents are read as text, capped, with a note of what was left out; bad ones get a specific reason."""

from __future__ import annotations

import pytest

from media.documents import extract
from media.errors import NoText, Unreadable, Unsupported
from tests.media.samples import docx, pdf, zip_bomb_docx


def test_a_pdf_gives_its_text_and_page_count() -> None:
    found = extract(
        pdf(["Quarterly report", "Revenue grew", "Outlook"]), "report.pdf", "application/pdf", max_chars=20_000
    )
    assert found.kind == "a 3-page PDF"
    assert found.note is None
    assert "Quarterly report" in found.text and "Outlook" in found.text


def test_a_long_pdf_stops_at_the_cap_and_says_how_many_pages_were_read() -> None:
    pages = [f"Page {n} " + "x" * 90 for n in range(1, 41)]
    found = extract(pdf(pages), "long.pdf", "application/pdf", max_chars=1_150)
    assert found.kind == "a 40-page PDF"
    assert found.note == "first 12 of 40 pages"
    assert len(found.text) <= 1_150
    assert "Page 12" in found.text and "Page 13" not in found.text


def test_a_scanned_pdf_without_text_is_named_as_such() -> None:
    with pytest.raises(NoText, match="scanned"):
        extract(pdf(["", ""]), "scan.pdf", "application/pdf", max_chars=20_000)


def test_a_corrupt_pdf_is_refused() -> None:
    with pytest.raises(Unreadable, match=r"broken\.pdf"):
        extract(b"%PDF-1.4\n garbage that is no PDF", "broken.pdf", "application/pdf", max_chars=20_000)


def test_text_markdown_csv_and_code_are_read_and_capped() -> None:
    assert extract(b"# Title\n\nSome *notes*.", "notes.md", "", max_chars=100).text == "# Title\n\nSome *notes*."
    assert extract(b"a,b\n1,2\n", "data.csv", "text/csv", max_chars=100).text == "a,b\n1,2\n"
    long = extract(("print('hi')\n" * 1000).encode(), "main.py", "", max_chars=500)
    assert len(long.text) == 500
    assert long.note == "first 500 of 12,000 characters"


def test_a_word_document_is_read_and_a_zip_bomb_is_refused() -> None:
    found = extract(docx(["Dear team,", "the launch moves to May."]), "memo.docx", "", max_chars=1_000)
    assert found.kind == "a Word document"
    assert found.text == "Dear team,\nthe launch moves to May."
    with pytest.raises(Unreadable, match="unpacks"):
        extract(zip_bomb_docx(64 * 1024 * 1024), "bomb.docx", "", max_chars=1_000)


def test_an_entity_bomb_in_a_word_document_is_refused() -> None:
    xml = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><d>&b;</d>'
    with pytest.raises(Unreadable):
        extract(docx([], document_xml=xml), "laughs.docx", "", max_chars=1_000)


def test_binary_and_unknown_types_are_unsupported() -> None:
    with pytest.raises(Unsupported):
        extract(b"\x00\x01\x02binary", "program.exe", "application/octet-stream", max_chars=100)
    with pytest.raises(Unsupported):
        extract(b"PK\x03\x04", "archive.zip", "application/zip", max_chars=100)
