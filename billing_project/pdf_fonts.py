"""The one font family of every PDF the product draws (invoices, credit notes, statements, reports, payout
statements): Bitstream Vera, the TrueType fonts that ship inside reportlab, registered once on import. A TrueType
font is embedded in the file (the glyphs used), as PDF/A wants of a Factur-X invoice; reportlab's default,
Helvetica, is one of the base-14 fonts that are never embedded. Vera, not a system font, so every machine prints
the same file."""

from pathlib import Path

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT = "Vera"
BOLD = "Vera-Bold"
ITALIC = "Vera-Italic"
BOLD_ITALIC = "Vera-BoldItalic"
_DIRECTORY = Path(reportlab.__file__).parent / "fonts"
_FILES = {FONT: "Vera.ttf", BOLD: "VeraBd.ttf", ITALIC: "VeraIt.ttf", BOLD_ITALIC: "VeraBI.ttf"}

for _name, _file in _FILES.items():
    pdfmetrics.registerFont(TTFont(_name, str(_DIRECTORY / _file)))
# <b> and <i> in a paragraph drawn in FONT pick the family's other faces.
pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=ITALIC, boldItalic=BOLD_ITALIC)
