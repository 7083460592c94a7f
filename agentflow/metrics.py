"""Token estimates, cost sums and the per-run totals that land in ``metadata``.

Token counts from providers are authoritative; the estimate here serves the offline echo
provider and the queue's token reservation before a call (spec section 3), where being
close and fast matters more than matching one vendor's tokenizer.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """Roughly one token per word or punctuation mark (close to BPE counts for English)."""
    if not text:
        return 0
    return len(_TOKEN_RE.findall(text))


def add_tokens(total: dict[str, int], part: dict[str, int] | None) -> None:
    """Add ``part`` ({"prompt", "completion", "total"}) into ``total`` in place."""
    if not part:
        return
    for k in ("prompt", "completion", "total"):
        total[k] = total.get(k, 0) + int(part.get(k, 0) or 0)


def summarize_trace(trace: list[dict[str, Any]]) -> tuple[dict[str, int], float]:
    """Tokens and cost summed over a trace."""
    tokens = {"prompt": 0, "completion": 0, "total": 0}
    cost = 0.0
    for entry in trace:
        add_tokens(tokens, entry.get("tokens"))
        cost += float(entry.get("cost_usd") or 0.0)
    return tokens, round(cost, 10)
