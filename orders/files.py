"""Uploaded files: what kind they are (sniffed from their bytes), what they may be called, where they are kept.

The browser's content type and the file's extension are never trusted: the kind comes from the bytes (the
`filetype` library reads their signature) and the extension must agree with it.
"""

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype
from django.core.files.uploadedfile import UploadedFile

from billing_project.errors import DomainError

# kind -> (MIME type the bytes reveal, extensions a file of that kind may carry); the first is the one stored.
FILE_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": ("application/pdf", ("pdf",)),
    "jpeg": ("image/jpeg", ("jpg", "jpeg")),
    "png": ("image/png", ("png",)),
    "tiff": ("image/tiff", ("tif", "tiff")),
}
MAX_NAME_LENGTH = 120
SNIFF_BYTES = 8192
# Control characters (NUL, newlines) and format characters (right-to-left overrides, zero-width spaces): a name
# holding them reads differently from what it is ("invoice\u202efdp.exe" shows as "invoiceexe.pdf").
HIDING_CATEGORIES = {"Cc", "Cf"}


@dataclass(frozen=True)
class CheckedFile:
    upload: UploadedFile
    original_name: str
    kind: str
    extension: str
    size: int
    sha256: str


def clean_file_name(name: str, *, field: str = "file") -> str:
    """The name as given, if it is a plain file name; refused if it tries to be a path or hides characters."""
    problem = None
    if not name or not name.strip():
        problem = "The file has no name."
    elif any(unicodedata.category(char) in HIDING_CATEGORIES for char in name):
        problem = "The file name holds control or invisible characters."
    # ":" names a Windows drive ("C:x.pdf") or an NTFS stream ("x.pdf:payload").
    elif any(separator in name for separator in "/\\:") or name.startswith("."):
        problem = "The file name must be a plain name, not a path."
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"The file name is longer than {MAX_NAME_LENGTH} characters."
    if problem:
        raise DomainError(problem, code="bad_file_name", fields={field: [problem]})
    return unicodedata.normalize("NFC", name.strip())


def check_upload(upload: UploadedFile, *, accepted_kinds: list[str], max_size: int, field: str = "file") -> CheckedFile:
    """The upload, checked: a plain name, not empty, within `max_size`, of an accepted kind by its bytes, and
    with an extension that agrees with them. Nothing is stored here."""

    def refuse(message: str, code: str) -> DomainError:
        return DomainError(message, code=code, fields={field: [message]})

    name = clean_file_name(upload.name or "", field=field)
    if upload.size == 0:
        raise refuse(f"{name} is empty.", "empty_file")
    if upload.size > max_size:
        raise refuse(f"{name} is {upload.size:,} bytes; at most {max_size:,} are accepted.", "file_too_large")
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    guessed = filetype.guess(head)
    kind = next((k for k, (mime, _) in FILE_KINDS.items() if guessed is not None and guessed.mime == mime), None)
    accepted = ", ".join(k.upper() for k in accepted_kinds)
    if kind is None:
        raise refuse(f"{name} is not a file kind this document takes ({accepted}).", "file_kind")
    if kind not in accepted_kinds:
        raise refuse(f"{name} is a {kind.upper()} file; this document takes {accepted}.", "file_kind")
    extension = PurePosixPath(name).suffix.lower().lstrip(".")
    if extension not in FILE_KINDS[kind][1]:
        raise refuse(
            f"{name} holds a {kind.upper()} file but is named .{extension or '(none)'}; name it "
            f".{FILE_KINDS[kind][1][0]}.",
            "file_extension",
        )
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedFile(
        upload=upload,
        original_name=name,
        kind=kind,
        extension=FILE_KINDS[kind][1][0],
        size=upload.size,
        sha256=digest.hexdigest(),
    )
