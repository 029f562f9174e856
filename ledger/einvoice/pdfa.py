"""What makes the Factur-X PDF a PDF/A-3 file beyond what factur-x writes (the attached XML and the XMP metadata
that declares PDF/A-3): the sRGB output intent that the pages' DeviceRGB colours need, a document information
dictionary that says what the XMP says, the file identifier in the trailer, and one clean file from byte zero
(factur-x's generate_from_binary leaves the start of the PDF it was given in front of the file it writes). The
fonts are embedded when the pages are drawn (billing_project/pdf_fonts.py); nothing here is encrypted or
transparent. Only the catalogue and the metadata change; the pages are the same."""

from datetime import UTC
from functools import cache
from io import BytesIO

from PIL import ImageCms
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, TextStringObject

SRGB = "sRGB IEC61966-2.1"
HEADER = "%PDF-1.7"  # PDF/A-3 is based on ISO 32000-1, PDF 1.7


@cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (a display profile, colour space 'RGB '), made in memory by Little CMS through
    Pillow: nothing to ship or to find on the machine."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pdf_date(moment) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")  # pypdf reads the XMP's dates in UTC


def pdfa3(pdf: bytes) -> bytes:
    """The Factur-X PDF as factur-x wrote it, with the output intent, the information dictionary made from the
    XMP metadata, and a file identifier; written anew."""
    writer = PdfWriter(clone_from=BytesIO(pdf))
    writer.pdf_header = HEADER
    profile = DecodedStreamObject()
    profile.set_data(srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject(
        [
            DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/OutputIntent"),
                    NameObject("/S"): NameObject("/GTS_PDFA1"),
                    NameObject("/OutputConditionIdentifier"): TextStringObject(SRGB),
                    NameObject("/Info"): TextStringObject(SRGB),
                    NameObject("/DestOutputProfile"): writer._add_object(profile),  # pypdf's own way, as factur-x's
                }
            )
        ]
    )
    # PDF/A: every entry of the information dictionary equals its XMP property, so the dictionary is made from
    # the XMP and holds nothing the XMP lacks (factur-x adds Keywords to one only, and reportlab's Producer and
    # Trapped stay in the dictionary when factur-x writes its own XMP).
    xmp = writer.xmp_metadata
    info = {
        "/Title": (xmp.dc_title or {}).get("x-default"),
        "/Author": ", ".join(xmp.dc_creator or []),
        "/Subject": (xmp.dc_description or {}).get("x-default"),
        "/Creator": xmp.xmp_creator_tool,
        "/Producer": xmp.pdf_producer,
        "/CreationDate": _pdf_date(xmp.xmp_create_date),
        "/ModDate": _pdf_date(xmp.xmp_modify_date),
    }
    writer.metadata = {key: value for key, value in info.items() if value}
    writer.generate_file_identifiers()  # keeps the first identifier, reportlab's; the second marks this version
    output = BytesIO()
    writer.write(output)
    return output.getvalue()
