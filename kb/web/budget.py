"""A PART's research budget: searches, pages, the research model's tokens and dollars.

Limits come from runners/researcher.md (``budget:``), then kb.toml ``[research]``, then the
command line (``--budget-searches`` ...); ``None`` is no limit. Research asks before each
search, page or model call and stops, saying why, when one is spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("searches", "pages", "tokens", "usd")


@dataclass
class Budget:
    limits: dict[str, float | None] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    stopped: str | None = None  # the first limit research ran into

    def left(self, kind: str) -> float | None:
        limit = self.limits.get(kind)
        return None if limit is None else max(0, limit - self.spent[kind])

    def allows(self, kind: str, amount: float = 1) -> bool:
        """Whether ``amount`` more of ``kind`` fits; the first refusal is remembered as the reason research stopped."""
        left = self.left(kind)
        if left is None or amount <= left:
            return True
        self.stopped = self.stopped or f"the {kind} budget ({self.limits[kind]:g}) is spent"
        return False

    def spend(self, kind: str, amount: float) -> None:
        self.spent[kind] += amount

    def record(self) -> dict:
        return {"limits": {k: v for k, v in self.limits.items() if v is not None},
                "spent": {k: round(v, 6) if k == "usd" else int(v) for k, v in self.spent.items()},
                **({"stopped": self.stopped} if self.stopped else {})}


def merge_limits(*layers: dict | None) -> dict[str, float | None]:
    """Later layers win, key by key; a None value leaves the earlier one."""
    out: dict[str, float | None] = dict.fromkeys(KINDS)
    for layer in layers:
        for kind in KINDS:
            value = (layer or {}).get(kind)
            if value is not None:
                out[kind] = value
    return out
