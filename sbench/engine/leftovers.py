"""What cleanup left behind: how many of this run's objects stay, where, and why.

"Left" is counted, never estimated from errors: the objects this run created (prepared objects that did not
exist before, and this run's workload PUT keys) minus those cleanup confirmed gone (deleted, or already
not found). An object that was never attempted because the run was aborted counts as left too. When a
listing of PUT keys did not finish, the count at that place is a lower bound and says so (`exact: false`).

The rule (one place): cleanup that leaves objects fails the run unless `cleanup_mode: besteffort`, where it
is a warning; this holds even for a cleanup stage marked `optional`. STATUS.txt, summary.json and the
console all render the same report built here.

When no cleanup stage reported (the run was aborted before it, or cleanup is off on purpose),
`engine.uncleaned` builds the same report from what the run knows it created.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

BESTEFFORT = "besteffort"
#: pseudo error class of objects never attempted because the stage was stopped or its task was lost
NOT_ATTEMPTED = "not_attempted"


@dataclass
class Leftover:
    """Objects of this run that stay at one place (a URI prefix: a prepare root or a PUT key prefix on one
    endpoint) after cleanup, with the first message of every error class that kept them there."""

    location: str
    left: int = 0
    #: False when the count is a lower bound (a listing did not finish)
    exact: bool = True
    #: error class -> first message
    errors: dict[str, str] = field(default_factory=dict)
    #: a command that removes exactly these objects (set when cleanup did not run)
    remove: str = ""

    @property
    def matters(self) -> bool:
        """Something stays here, or we cannot tell that nothing does."""
        return self.left > 0 or not self.exact

    def note(self, kind: str, message: str) -> None:
        self.errors.setdefault(kind, message)

    def line(self) -> str:
        count = f"{self.left:,}" if self.exact else f"at least {self.left:,} (listing incomplete)"
        why = "; ".join(f"{k}: {m}" for k, m in sorted(self.errors.items()))
        return f"{self.location}: {count}" + (f" [{why}]" if why else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "left": self.left,
            "exact": self.exact,
            "errors": dict(self.errors),
            **({"remove": self.remove} if self.remove else {}),
        }


def merge(items: Iterable[Leftover]) -> list[Leftover]:
    """One entry per location (counts added, first errors kept), only where something matters."""
    out: dict[str, Leftover] = {}
    for item in items:
        have = out.get(item.location)
        if have is None:
            out[item.location] = Leftover(item.location, item.left, item.exact, dict(item.errors))
            continue
        have.left += item.left
        have.exact = have.exact and item.exact
        for kind, message in item.errors.items():
            have.note(kind, message)
    return [o for o in out.values() if o.matters]


def fails_run(mode: str, items: Sequence[Leftover]) -> bool:
    """Cleanup left objects (or cannot tell) and the mode is not besteffort: the run fails."""
    return mode != BESTEFFORT and any(i.matters for i in items)


def summary(items: Sequence[Leftover]) -> str:
    """One line for a failure reason: `cleanup left 12 objects of this run: LOCATION: 10; LOCATION: 2`
    (the error messages are in `lines`)."""
    kept = [i for i in items if i.matters]
    total = sum(i.left for i in kept)
    head = f"{total:,} objects" if all(i.exact for i in kept) else f"at least {total:,} objects"
    where = "; ".join(f"{i.location}: {i.left:,}" + ("" if i.exact else "+") for i in kept)
    return f"cleanup left {head} of this run: {where}"


def report(
    mode: str, items: Sequence[Leftover], *, aborted: bool = False, not_run: str = ""
) -> dict[str, Any]:
    """The summary.json form (also what a stage outcome carries in `details["left_behind"]`). `not_run`:
    why no cleanup removed these objects (then they never fail the run on their own: the run was already
    aborted or failed, or keeping them was asked for)."""
    kept = [i for i in items if i.matters]
    return {
        "total": sum(i.left for i in kept),
        "exact": all(i.exact for i in kept),
        "cleanup_mode": mode,
        "fails_run": fails_run(mode, kept) and not aborted and not not_run,
        "aborted": aborted,
        **({"cleanup_not_run": not_run} if not_run else {}),
        "locations": [i.to_dict() for i in kept],
    }


def from_report(data: dict[str, Any] | None) -> list[Leftover]:
    """Back from the summary.json form (a stage outcome's details) to Leftover entries."""
    if not data:
        return []
    return [
        Leftover(
            d["location"], int(d["left"]), bool(d["exact"]), dict(d.get("errors") or {}), d.get("remove", "")
        )
        for d in data.get("locations", [])
    ]


def lines(data: dict[str, Any] | None) -> list[str]:
    """STATUS.txt and console lines of a report; empty when nothing was left."""
    items = from_report(data)
    if not data or not items:
        return []
    total = f"{data['total']:,}" if data["exact"] else f"at least {data['total']:,}"
    if data.get("cleanup_not_run"):
        verdict = f"not cleaned up: {data['cleanup_not_run']}"
    elif data.get("aborted"):
        verdict = "the run was aborted during cleanup"
    elif data["fails_run"]:
        verdict = f"cleanup_mode={data['cleanup_mode']}: the run fails"
    else:
        verdict = f"WARNING only (cleanup_mode={data['cleanup_mode']})"
    out = [f"Objects left: {total} ({verdict})"]
    for item in items:
        out.append(f"- {item.line()}")
        if item.remove:
            out.append(f"  remove with: {item.remove}")
    return out
