"""Source templates with tagged lines, specialised by keeping the lines a variant needs, compiled once.

The hot-path code (the worker loop in engine.loops, each op's call in engine.opcalls) is written once as a
template, and every variant a run can need is produced from it, as `dataclasses` generates methods: a
variant without a step has no line for it, so that step costs nothing per op, and no variant is a copy
that can drift from the others. A template line ends in its tags, two spaces then `@tag` words, all of
which must hold for the line to be kept (`@!tag`: must not hold); untagged lines are always kept. Words
in `words` are then replaced (e.g. `AWAIT ` by `await ` or nothing).

The compiled source is registered with `linecache` under its file name, so tracebacks, `pdb` and
profilers show the generated lines.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def select(template: str, tags: Iterable[str]) -> list[str]:
    """The template's lines whose tags all hold for `tags`, with their tags removed."""
    have = frozenset(tags)
    out = []
    for line in template.strip("\n").splitlines():
        code, _, tagged = line.partition("  @")
        wanted = ("@" + tagged).split() if tagged else []
        if all((t[2:] not in have) if t.startswith("@!") else (t[1:] in have) for t in wanted):
            out.append(code.rstrip())
    return out


def substitute(source: str, words: Mapping[str, str]) -> str:
    """`source` with every word of `words` replaced by its value."""
    for word, value in words.items():
        source = source.replace(word, value)
    return source


def compile_source(source: str, filename: str, name: str, namespace: Mapping[str, Any]) -> Callable[..., Any]:
    """Compile generated `source` and return its function `name`; the source goes into linecache under
    `filename` (a `<...>` name, as for other generated code), so tracebacks show its lines."""
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    scope = dict(namespace)
    exec(compile(source, filename, "exec"), scope)  # our own templates: no outside text reaches them
    function: Callable[..., Any] = scope[name]
    return function
