"""GSM 03.38: what fits in one SMS segment.

A message of GSM-7 characters only travels as 7-bit text, 160 characters per segment;
one character outside the alphabet (an "…", a "≥", an emoji) switches the whole message
to UCS-2 and 70 characters per segment. The extension table's characters (`{ } [ ] ~ \\
^ | €`) are sent as two (an escape and the character).
"""

from __future__ import annotations

import unicodedata

SEGMENT = 160

BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = set("^{}\\[~]|€\f")

# What we would rather write than drop: typography and the symbols our texts use.
_REPLACE = {
    "…": "...",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "≥": ">=",
    "≤": "<=",
    "×": "x",
    "·": "-",
    "→": "->",
    "µ": "u",
    "\t": " ",
}


def length(text: str) -> int:
    """Septets `text` takes (extension characters count twice)."""
    return sum(2 if c in EXTENSION else 1 for c in text)


def is_gsm7(text: str) -> bool:
    return all(c in BASIC or c in EXTENSION for c in text)


def to_gsm7(text: str) -> str:
    """`text` in the GSM-7 alphabet: known symbols spelled out, accents dropped where the
    alphabet lacks them, anything else as '?'."""
    out = []
    for c in text:
        if c in BASIC or c in EXTENSION:
            out.append(c)
            continue
        if c in _REPLACE:
            out.append(_REPLACE[c])
            continue
        plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
        out.append(plain if plain and all(p in BASIC for p in plain) else "?")
    return "".join(out)


def fit(text: str, limit: int = SEGMENT) -> str:
    """`text` cut to `limit` septets, ending in '..' when cut (never an '…')."""
    if length(text) <= limit:
        return text
    out, used = [], 0
    for c in text:
        w = 2 if c in EXTENSION else 1
        if used + w > limit - 2:
            break
        out.append(c)
        used += w
    return "".join(out).rstrip() + ".."
