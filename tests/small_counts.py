"""Patterns of client counts below the suppression threshold written out in text.

Shared by the privacy attack on the public reports (``tests/privacy/test_attack_report.py``)
and the new user's public report (``tests/harmonise/test_new_programme.py``).
"""

from __future__ import annotations

import re

SMALL = "[0-4]"
NOT_MORE = r"(?![\d]|[.,]\d)"  # "n=1,533" is a thousand, not one
WORDS = r"(?:clients?|girls?|cases?|meisjes|cliënten|cliënt|respondents?|children)"
#: "N=1" followed by "-design", "-onderzoek", " multiple baseline"...: the name of a
#: design (single-case), not a count; every other "n=1" is still caught.
DESIGN_TERM = r"(?!(?-i:(?<=N=1))(?:-[a-zA-Z]| design| multiple))"
PATTERNS = [
    re.compile(rf"\bn\s*=\s*{SMALL}{NOT_MORE}{DESIGN_TERM}", re.I),
    re.compile(rf"\(\s*n\s*=\s*{SMALL}\s*\)", re.I),
    re.compile(rf"\b{SMALL}{NOT_MORE} {WORDS}\b", re.I),
    re.compile(rf"\b(?:zero|one|two|three|four|een|twee|drie|vier) {WORDS}\b", re.I),
    re.compile(rf"fewer than \d+ to {SMALL}{NOT_MORE}", re.I),
    re.compile(rf"\bto {SMALL}{NOT_MORE} {WORDS}", re.I),
]


def small_counts(text: str) -> list[str]:
    """Every match of :data:`PATTERNS` in ``text`` (white space folded first)."""
    text = re.sub(r"\s+", " ", text.replace("\u00a0", " "))
    return [m.group(0) for p in PATTERNS for m in p.finditer(text)]


def section_text(section) -> str:
    """Every text of a rendered report section the reader sees: prose, captions, table
    headers and cells (one string, to search for counts or words)."""
    out = []
    for b in section.blocks:
        out.append(str(b.caption))
        if b.kind == "text":
            out.append(str(b.content))
        elif b.kind == "table":
            out += [str(c) for c in b.content.columns]
            out += [str(v) for v in b.content.to_numpy().ravel()]
    return "\n".join(out)
