"""Injection signatures in input the app has already rejected.

Only input that validation refused is inspected (a 422, or a path no route
matched), and a signature never blocks anything by itself: it is counted
(`tracetrack_injection_attempts_total{kind}`) and recorded as a security event for
a human to judge. Accepted input is not inspected at all, so a location called
"Select Specialty Hospital" or "O'Reilly Depot" is neither refused nor counted.

SQL and script detection is libinjection's (the tokenizer behind ModSecurity's
@detectSQLi/@detectXSS), which reads input as SQL or HTML tokens instead of
matching words: "Select Specialty Hospital" is not SQL to it, `1' OR '1'='1` is.
Path traversal is a short list of the forms a traversal takes, decoded once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

import libinjection

SQL, SCRIPT, PATH_TRAVERSAL = "sql", "script", "path_traversal"
MAX_INSPECTED = 2048  # characters per value; signatures sit near the start
_TRAVERSAL = re.compile(
    r"(?:^|[\\/])\.\.(?:[\\/]|$)"  # ../ and ..\ as path segments
    r"|%2e%2e|%252e|\.\.%2f|\.\.%5c"  # encoded dots and slashes that survived one decode
    r"|/etc/(?:passwd|shadow)|\bboot\.ini\b|\bwin\.ini\b|\x00",
    re.IGNORECASE,
)


def _encodable(text: str) -> str:
    """`text` with unpaired surrogates as "?": rejected input may hold them (JSON's
    "\\ud800"), and neither libinjection nor PostgreSQL can take them."""
    return text.encode("utf-8", "replace").decode("utf-8")


def has_traversal(value: str) -> bool:
    text = value[:MAX_INSPECTED]
    return bool(_TRAVERSAL.search(text) or _TRAVERSAL.search(unquote(text)))


def kinds_in(value: str) -> set[str]:
    """The signature kinds found in one value (empty for ordinary text)."""
    text = _encodable(value[:MAX_INSPECTED])
    found = set()
    if has_traversal(text):
        found.add(PATH_TRAVERSAL)
    if libinjection.is_sql_injection(text)["is_sqli"]:
        found.add(SQL)
    if libinjection.is_xss(text)["is_xss"]:
        found.add(SCRIPT)
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def scan_validation_errors(errors: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Signature kind -> the fields that carried it, from FastAPI/pydantic's errors."""
    found: dict[str, list[str]] = {}
    for err in errors:
        # Client-chosen keys appear in locations: keep them storable (no NUL, no
        # unpaired surrogate) and short.
        where = _encodable(".".join(str(p) for p in err.get("loc", ()))).replace("\x00", "?")
        where = where[:200]
        for text in _strings(err.get("input")):
            for kind in kinds_in(text):
                fields = found.setdefault(kind, [])
                if where not in fields:
                    fields.append(where)
    return found
