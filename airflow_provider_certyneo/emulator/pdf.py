"""Real PDFs for the emulator: text pages written by hand, merged with uploaded documents by pypdf."""

from __future__ import annotations

import io
from collections.abc import Iterable

LINES_PER_PAGE = 48


def _escape(text: str) -> str:
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(title: str, lines: Iterable[str]) -> bytes:
    """A minimal, valid PDF (Helvetica, A4) holding ``title`` and ``lines``, paginated."""
    all_lines = list(lines)
    chunks = [all_lines[i : i + LINES_PER_PAGE] for i in range(0, len(all_lines), LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []
    page_ids: list[int] = []
    font_id = 3
    objects.append(b"")  # 1: catalog, filled at the end
    objects.append(b"")  # 2: pages, filled at the end
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for number, chunk in enumerate(chunks, start=1):
        ops = ["BT", "/F1 14 Tf", "50 800 Td", f"({_escape(title)}) Tj", "/F1 9 Tf", "0 -24 Td"]
        for line in chunk:
            ops += [f"({_escape(line)}) Tj", "0 -15 Td"]
        ops += ["ET", "BT", "/F1 8 Tf", "50 30 Td", f"(Page {number} / {len(chunks)}) Tj", "ET"]
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font_id, content_id)
        )
        page_ids.append(len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    kids = b" ".join(b"%d 0 R" % i for i in page_ids)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % index + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def count_pages(data: bytes) -> int:
    """Number of pages, or raise ``ValueError`` when the bytes are not a readable PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        return len(PdfReader(io.BytesIO(data)).pages)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a readable PDF: {exc}") from exc


def merge(documents: Iterable[bytes], extra: bytes) -> bytes:
    """The pages of every document, in order, followed by the pages of ``extra``."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for data in [*documents, extra]:
        writer.append(io.BytesIO(data))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
