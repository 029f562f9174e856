"""The official EN 16931 rules (tests/einvoice/en16931/, run with saxonche) as a fixture."""

from pathlib import Path

import pytest
from lxml import etree

HERE = Path(__file__).parent / "en16931"
STYLESHEETS = {  # the document's root namespace -> the official stylesheet that checks it
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": HERE / "EN16931-UBL-validation.xslt",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": HERE / "EN16931-UBL-validation.xslt",
    "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100": HERE / "EN16931-CII-validation.xslt",
}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@pytest.fixture(scope="session")
def en16931():
    """validate(xml) -> the fatal rules the document (UBL or CII, told by its root) breaks, as "BR-CO-10: text".
    Each stylesheet is compiled once for the session, when first needed."""
    saxonche = pytest.importorskip("saxonche")
    processor = saxonche.PySaxonProcessor(license=False)
    compiled = {}

    def validate(xml: bytes) -> list[str]:
        path = STYLESHEETS[etree.QName(etree.fromstring(xml)).namespace]
        if path not in compiled:
            compiled[path] = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))
        stylesheet = compiled[path]
        document = processor.parse_xml(xml_text=xml.decode("utf-8"))
        report = etree.fromstring(stylesheet.transform_to_string(xdm_node=document).encode("utf-8"))
        return [
            f"{failed.get('id')}: {' '.join(failed.findtext(f'{SVRL}text').split())}"
            for failed in report.iter(f"{SVRL}failed-assert")
            if failed.get("flag") == "fatal"
        ]

    return validate


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
