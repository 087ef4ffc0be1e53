"""Remove secrets from text by form, not by string: what providers really echo.

A provider that refuses a key often repeats it, and rarely verbatim: OpenAI masks
the middle (`sk-proj-****...wxyz`), others show only the start or the end
(`sk-...wxyz`, `****wxyz`), an error may carry the Authorization header URL-encoded,
base64-encoded (HTTP Basic, `user:key` in base64, at any alignment), or as hex.
`scrub(text, secrets)` replaces every such form of every secret with `***` before
the text is printed, logged or stored (apply/test output, the audit table), and
every piece of eight or more consecutive characters of it, in any letter case (a
message cut inside the key, its first characters, a key masked with `x`).

Pure and dependency-free: `reconciler.connection` runs every provider message
through it, and anything else that handles provider text should too.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from typing import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "***"

# Below this length a secret is replaced only where it stands alone, else a test key
# such as "k" would turn "check" into "chec***". Encoded forms of short secrets are
# not searched for (they would match innocent text).
SHORT_SECRET = 8
# The fewest characters of a key a masked form must show to count as a form of it.
_MIN_REVEALED = 2
# A run of mask characters: at least one `*`, `•` or `…`, or two dots (a lone `.` ends
# sentences). A masked key is such a run with a start and/or an end of the key around it.
_MASK_RUN = re.compile(r"(?:[*•…]|\.{2,})[*•….]*")


@functools.lru_cache(maxsize=64)
def encoded_forms(secret: str) -> tuple[str, ...]:
    """Every literal form of `secret` to search for, longest first.

    Raw; URL-encoded (`quote`, `quote_plus`, `quote` keeping `/`); JSON-escaped;
    hex (lower and upper case); base64 standard and URL-safe, padded and not, and
    the part of the encoding that depends only on the secret at each of the three
    byte alignments it can have inside a longer base64 string (HTTP Basic credentials,
    a base64-encoded request dump).
    """
    raw = secret.encode("utf-8")
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret), json.dumps(secret)[1:-1]}
    if len(secret) >= SHORT_SECRET:
        forms |= {raw.hex(), raw.hex().upper()}
        for offset in range(3):
            encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
            # Characters fully determined by the secret's bytes: skip those mixing in the
            # prefix, and the last one when it mixes in what follows.
            start = -(-offset * 8 // 6)
            end = (offset + len(raw)) * 8 // 6
            core = encoded[start:end]
            forms |= {core, core.replace("+", "-").replace("/", "_")}
        for encoded in (base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")):
            forms |= {encoded, encoded.rstrip("=")}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def _scrub_masked(text: str, secret: str) -> str:
    """Replace `<start of secret><mask run><end of secret>` (either side may be empty) with `***`.

    Each side is the longest piece that matches the secret there, whatever characters
    the key holds; together they must show at least two characters of the key.
    """
    out: list[str] = []
    position = 0
    for match in _MASK_RUN.finditer(text):
        start, end = match.span()
        if start < position:
            continue  # inside a span already replaced
        shown_before = next(
            (k for k in range(min(len(secret) - 1, start - position), 0, -1) if text[start - k : start] == secret[:k]), 0
        )
        shown_after = next(
            (m for m in range(min(len(secret) - 1, len(text) - end), 0, -1) if text[end : end + m] == secret[-m:]), 0
        )
        if shown_before + shown_after < _MIN_REVEALED:
            continue
        out.append(text[position : start - shown_before])
        out.append(REDACTED)
        position = end + shown_after
    out.append(text[position:])
    return "".join(out)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _scrub_fragments(text: str, secret: str) -> str:
    """Replace every run of SHORT_SECRET or more consecutive characters of `secret`, in any
    letter case, with `***`: a provider that cuts its message inside the key, shows its
    first characters, masks it with `x`, upper-cases it or breaks it across lines leaves
    such pieces, and each would give part of the key away."""
    # ASCII letters only: str.lower() may lengthen other characters and shift every index.
    lowered_secret = secret.translate(_ASCII_LOWER)
    pieces = {lowered_secret[i : i + SHORT_SECRET] for i in range(len(secret) - SHORT_SECRET + 1)}
    lowered = text.translate(_ASCII_LOWER)
    covered_until = -1
    spans: list[list[int]] = []
    for i in range(len(text) - SHORT_SECRET + 1):
        if lowered[i : i + SHORT_SECRET] in pieces:
            if spans and i <= covered_until:
                spans[-1][1] = i + SHORT_SECRET
            else:
                spans.append([i, i + SHORT_SECRET])
            covered_until = i + SHORT_SECRET
    if not spans:
        return text
    out, position = [], 0
    for start, end in spans:
        out += [text[position:start], REDACTED]
        position = end
    out.append(text[position:])
    return "".join(out)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every raw, encoded, masked or partial form of each secret replaced by `***`."""
    for secret in secrets:
        if not secret:
            continue
        for form in encoded_forms(secret):
            if len(form) >= SHORT_SECRET:
                text = text.replace(form, REDACTED)
            else:
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", REDACTED, text)
        if len(secret) >= SHORT_SECRET and any(c in text for c in "*•…."):
            text = _scrub_masked(text, secret)
        if len(secret) >= SHORT_SECRET:
            text = _scrub_fragments(text, secret)
    return text
