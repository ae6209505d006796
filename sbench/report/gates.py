"""`sbench compare --fail-if EXPR`: regression gates for CI pipelines.

    [STAGE:]CLASS.METRIC OP VALUE[%]

CLASS is GET, PUT, META or ALL; METRIC one of report.compare.METRICS (aliases: ops, iops, mibps, p99.9,
errors); OP one of < <= > >=. With `%` the value is the change against the base in % (`GET.p99 > +10%`:
p99 rose by more than 10 %); without it, the other run's own figure (`ALL.error_rate > 0.01`,
`GET.p99 > 5000` in µs). Without STAGE a gate applies to every workload (execute, hybrid) stage of the base,
or to every stage that did I/O when there is none. A condition that holds for any other run and stage fails
the comparison (exit 1); an expression that cannot be read, or that names a stage, class or figure the base
does not have, is a usage error (exit 2): a gate that silently checks nothing is worse than none.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from sbench.errors import UsageError
from sbench.report.compare import METRIC_TITLES, METRICS, Comparison, format_change, format_figure
from sbench.report.stages import CLASSES, Stage

_EXPR = re.compile(
    r"^\s*(?:(?P<stage>[^:\s]+)\s*:\s*)?(?P<cls>[A-Za-z]+)\.(?P<metric>[A-Za-z0-9_.]+)\s*"
    r"(?P<op><=|>=|<|>)\s*(?P<value>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<pct>%)?\s*$"
)
ALIASES = {
    "ops": "ops_per_sec",
    "iops": "ops_per_sec",
    "ops/s": "ops_per_sec",
    "mibps": "mib_per_sec",
    "mib/s": "mib_per_sec",
    "throughput": "mib_per_sec",
    "p99.9": "p999",
    "errors": "error_rate",
}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
FORM = "[STAGE:]CLASS.METRIC OP VALUE[%], e.g. 'GET.p99 > +10%' or 'ALL.ops_per_sec < -5%'"


@dataclass(frozen=True)
class Gate:
    text: str
    stage: str | None
    cls: str
    metric: str
    op: str
    value: float
    relative: bool

    def holds(self, figure: float) -> bool:
        return OPERATORS[self.op](figure, self.value)


def parse_gate(text: str) -> Gate:
    """One `--fail-if` expression; UsageError (exit 2) naming it and the expected form."""
    match = _EXPR.match(text)
    if match is None:
        raise UsageError(f"--fail-if {text!r}: cannot read the condition; expected {FORM}")
    cls = match["cls"].upper()
    if cls not in CLASSES:
        raise UsageError(
            f"--fail-if {text!r}: unknown op class {match['cls']!r}; one of {', '.join(CLASSES)}"
        )
    metric = ALIASES.get(match["metric"].lower(), match["metric"].lower())
    if metric not in METRICS:
        raise UsageError(
            f"--fail-if {text!r}: unknown figure {match['metric']!r}; one of {', '.join(METRICS)}"
        )
    return Gate(text, match["stage"], cls, metric, match["op"], float(match["value"]), bool(match["pct"]))


def _scope(gate: Gate, stages: list[Stage], base_name: str) -> list[Stage]:
    if gate.stage is not None:
        named = [s for s in stages if s.name == gate.stage]
        if not named:
            names = ", ".join(s.name for s in stages) or "none"
            raise UsageError(
                f"--fail-if {gate.text!r}: {base_name} has no stage {gate.stage!r} with I/O ({names})"
            )
        return named
    return [s for s in stages if s.is_workload] or stages


def check_gates(gates: list[Gate], comparison: Comparison) -> list[str]:
    """The conditions that hold, one line each naming the expression, the run, the stage and the figures."""
    held: list[str] = []
    base = comparison.base
    for gate in gates:
        checked = False
        for stage in _scope(gate, base.stages, base.run.name):
            row = comparison.row(stage.name, gate.cls, gate.metric)
            if row is None or row.base is None:
                continue
            checked = True
            title = f"{gate.cls}.{gate.metric}"
            for other, delta in zip(comparison.others, row.others, strict=True):
                figure = delta.change if gate.relative else delta.value
                where = f"{other.run.name} stage {stage.name!r}"
                if figure is None:
                    held.append(f"{gate.text}: {where} has no {title} (no {gate.cls} ops there)")
                    continue
                if gate.holds(figure):
                    change = "" if delta.change is None else f", {format_change(delta.change)}"
                    noise = "" if delta.band is None else f", noise ±{delta.band:.1f}%"
                    figures = (
                        f"{format_figure(gate.metric, row.base)} -> {format_figure(gate.metric, delta.value)}"
                    )
                    held.append(f"{gate.text}: holds for {where}: {title} {figures}{change}{noise}")
        if not checked:
            raise UsageError(
                f"--fail-if {gate.text!r}: {base.run.name} has no {gate.cls} {METRIC_TITLES[gate.metric]} "
                "figure in the stages it applies to, so it would check nothing"
            )
    return held
