"""User-supplied text as the product stores or echoes it."""

import pytest

from billing_project.text import has_unprintable, printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("ACME-001", "ACME-001"),
        ("Zürich café €", "Zürich café €"),
        ("ACME\x00-001", "ACME\\x00-001"),
        ("tab\there\r\n", "tab\\x09here\\x0d\\x0a"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("del\x7f c1\x85", "del\\x7f c1\\x85"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_control_characters_and_lone_surrogates_are_shown_escaped(text, shown):
    assert printable(text) == shown
    assert printable(shown) == shown  # applying it again changes nothing more
    assert has_unprintable(text) == (text != shown)
