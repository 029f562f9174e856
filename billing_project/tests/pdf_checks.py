"""Checks on the PDFs the product draws, shared by the tests of invoices, e-invoices and reports."""

from io import BytesIO

from pypdf import PdfReader

FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")  # Type 1, TrueType, other programs (ISO 32000-1, 9.9)


def page_fonts(pdf: bytes) -> dict[str, str | None]:
    """Each font the pages' resources name (its BaseFont), with the key of its embedded program in its font
    descriptor ("/FontFile2" for TrueType); None for a font whose program is not in the file (a base-14 font
    such as Helvetica has no descriptor at all)."""
    fonts = {}
    for page in PdfReader(BytesIO(pdf)).pages:
        for font in page["/Resources"].get("/Font", {}).values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            fonts[str(font["/BaseFont"])] = next((key for key in FONT_FILES if key in descriptor), None)
    return fonts
