"""User-supplied text as the product stores or echoes it (error reports, warnings, file names, API errors)."""

import re

# Control characters (C0, DEL, C1) and lone surrogates. PostgreSQL stores no NUL in text or JSON, no database
# stores a lone surrogate (it is not UTF-8), and the others garble a page, a terminal or a CSV file.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with each control character and lone surrogate written as its escape (`\\x00`, `\\x1b`, `\\ud800`).

    Safe for both databases and for any page, file or terminal; applying it twice changes nothing more.
    """
    return _UNPRINTABLE.sub(_escape, text)


def has_unprintable(text: str) -> bool:
    """Whether `printable` would change `text`: such text is refused where it would be kept as it is (an id)."""
    return _UNPRINTABLE.search(text) is not None
