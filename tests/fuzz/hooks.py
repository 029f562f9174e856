"""Schemathesis hooks: ids in paths and bodies are the demo's real ones, so operations reach past 404 and 400.

Loaded through SCHEMATHESIS_HOOKS by tests/fuzz/run.py; FUZZ_ROLE_FILE names the JSON written by
tests/fuzz/prepare.py for the role being fuzzed. Only values of the documented type are replaced: a
negative case about an id (`2.5`, `"abc"`) reaches the API as generated. One generated id in
KEEP_GENERATED_EVERY is left alone too, most likely naming no object, which must answer 404 or 400.
"""

import hashlib
import json
import os
from pathlib import Path

import schemathesis

ROLE_FILE = json.loads(Path(os.environ["FUZZ_ROLE_FILE"]).read_text())
PATHS: dict[str, list[dict]] = ROLE_FILE["targets"]
BODIES: dict[str, list] = ROLE_FILE["bodies"]
KEEP_GENERATED_EVERY = 8
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _as_number(value) -> int | None:
    """The generated id as a number, or None when it is not a whole number (a negative case)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit():
        return int(value)
    return None


def _stable_number(*parts) -> int:
    """A number from the case's other parts: the same case always gets the same object (replays and shrinking
    stay deterministic), while the coverage phase, which always generates the same id, is spread over many."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _real_path_ids(case) -> None:
    choices = PATHS.get(case.operation.path)
    if not choices or not case.path_parameters:
        return
    generated = [_as_number(case.path_parameters.get(name)) for name in choices[0]]
    if None in generated or generated[0] % KEEP_GENERATED_EVERY == KEEP_GENERATED_EVERY - 1:
        return
    pick = generated[0] + _stable_number(case.body, case.query)
    case.path_parameters = {**case.path_parameters, **choices[pick % len(choices)]}


def _real_body_values(case) -> None:
    if not isinstance(case.body, dict):
        return
    for field, choices in BODIES.items():
        value = case.body.get(field)
        if not choices or value is None or isinstance(value, bool):
            continue
        if isinstance(value, str) and isinstance(choices[0], int) and case.media_type == "application/json":
            continue  # a number written as a string in JSON: a negative case about this field
        number = _as_number(value) if isinstance(choices[0], int) else None
        if isinstance(choices[0], int) and number is None:
            continue  # not a whole number: a negative case about this field
        if isinstance(choices[0], str) and not isinstance(value, str):
            continue
        generated = number if number is not None else _stable_number(value)
        if generated % KEEP_GENERATED_EVERY == KEEP_GENERATED_EVERY - 1:
            continue
        case.body[field] = choices[(generated + _stable_number(case.path_parameters, case.query)) % len(choices)]


def _idempotency_key_per_case(case) -> None:
    """The coverage phase sends one Idempotency-Key with many bodies: each would answer 409 after the first and
    test nothing else. The key is made the case's own; the same case sent again still replays."""
    headers = case.headers or {}
    key = headers.get(IDEMPOTENCY_HEADER)
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        return  # no key, or a case about the key itself (too long)
    request = [case.operation.label, case.media_type, case.path_parameters, case.query, case.body]
    digest = hashlib.sha256(json.dumps(request, default=repr).encode()).hexdigest()[:16]
    case.headers = {**headers, IDEMPOTENCY_HEADER: f"{key[: MAX_KEY_LENGTH - len(digest) - 1]}-{digest}"}


@schemathesis.hook
def map_case(context, case):
    _real_path_ids(case)
    _real_body_values(case)
    _idempotency_key_per_case(case)
    return case
