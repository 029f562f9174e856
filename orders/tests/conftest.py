import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from catalog.tests.factories import CustomerFactory
from orders.tests.factories import DocumentTypeFactory, OrderTypeFactory, RequirementFactory


def pdf_bytes() -> bytes:
    """A small, real PDF (reportlab)."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "Certificate")
    page.save()
    return buffer.getvalue()


def png_bytes() -> bytes:
    """A real 1x1 PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def pdf_upload():
    return lambda name="passport.pdf": SimpleUploadedFile(name, pdf_bytes(), content_type="application/pdf")


@pytest.fixture
def png_upload():
    return lambda name="address.png": SimpleUploadedFile(name, png_bytes(), content_type="image/png")


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def operations_user(make_user):
    return make_user(Role.OPERATIONS, email="ops@x.example")


@pytest.fixture
def formation(db):
    """An order type requiring a passport and a proof of address, for one customer."""
    passport = DocumentTypeFactory(code="passport", name="Passport", accepted_kinds="pdf,jpeg,png", validity_days=365)
    address = DocumentTypeFactory(code="proof_of_address", name="Proof of address", accepted_kinds="pdf,png")
    order_type = OrderTypeFactory(code="uk_formation", name="UK company formation")
    RequirementFactory(order_type=order_type, document_type=passport)
    RequirementFactory(order_type=order_type, document_type=address)
    return {
        "order_type": order_type,
        "passport": passport,
        "address": address,
        "customer": CustomerFactory(client_id="ACME-001", name="Acme Ltd", currency="GBP"),
    }
