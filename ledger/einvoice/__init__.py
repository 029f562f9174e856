"""EN 16931 e-invoices of issued invoices and credit notes: the business terms once (terms.py), rendered as UBL
(ubl.py) and as CII inside a Factur-X PDF (cii.py), checked before they are stored (rules.py, schema.py).

What is stored, per syntax: the file field of an Invoice or CreditNote, the download's name ending, its type.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredEinvoice:
    field: str
    ending: str
    content_type: str
    label: str

    def file_of(self, document):
        """The stored file of an invoice or credit note, or None when it has none."""
        return getattr(document, self.field) or None

    def file_name(self, document) -> str:
        return f"{document.number}{self.ending}"


STORED = {
    "ubl": StoredEinvoice("einvoice", ".xml", "application/xml", "UBL"),
    "cii": StoredEinvoice("facturx", "-facturx.pdf", "application/pdf", "Factur-X"),
}
