"""Read YAML while remembering the line of every key, so each error can point at the line to fix.

Hostile input is refused before anything is built (`check_limits`): a document over MAX_DOCUMENT_CHARS, one
nested deeper than MAX_DEPTH, or one whose aliases expand to more than MAX_NODES values (a "billion laughs"
bomb of nine levels of 9x aliases is ~10^9 values from 500 bytes). The check walks the parser's event stream
once, keeping the expanded size of each anchor, so it costs time linear in the text and stops at the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from sbench.config.problems import KeyPath, Problem

try:  # libyaml is much faster on large files; the pure-Python loader behaves the same.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


#: A workload file is a few KB (the largest public sai3 example is ~5 KB); 1 MiB leaves 200x room while
#: keeping parsing well under a second.
MAX_DOCUMENT_CHARS = 1024 * 1024
#: Values (scalars, lists and mappings, each alias counted as what it expands to): a 1,000-agent distributed
#: config has ~7,000; at 20,000 parsing and validating still take well under a second on a loaded core.
MAX_NODES = 20_000
#: Nesting levels: workload files nest about 6 deep; the line-mark walk recurses once per level.
MAX_DEPTH = 64


class YamlLimitError(ValueError):
    """The document is too large, too deep or expands too much; the message names the limit and the fix,
    `line` (1-based) where the parser was when the limit was crossed."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class YamlSource:
    """Parsed data plus `lines[key path] = 1-based line` for every mapping key and list item, and
    `spans[key path] = (start, end)` character offsets of every scalar value (to redact secrets)."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    spans: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def check_limits(text: str) -> None:
    """YamlLimitError when `text` breaks a limit of this module (see its docstring); yaml.YAMLError on bad
    syntax found on the way."""
    if len(text) > MAX_DOCUMENT_CHARS:
        raise YamlLimitError(
            f"is {len(text):,} characters long; sbench reads workload files of at most "
            f"{MAX_DOCUMENT_CHARS:,} (1 MiB; real ones are a few KB), so this is not a workload file or it "
            "was generated wrong: trim it"
        )
    loader = _Loader(text)
    try:
        anchors: dict[str, int] = {}
        stack: list[list[Any]] = [[None, 0]]  # per open collection: its anchor and its expanded size so far
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                stack.append([event.anchor, 1])
                if len(stack) > MAX_DEPTH + 1:
                    raise YamlLimitError(
                        f"nests deeper than {MAX_DEPTH} levels (workload files nest about 6); flatten it",
                        event.start_mark.line + 1,
                    )
                continue
            if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                anchor, size = stack.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, size = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                anchor, size = None, anchors.get(event.anchor, 1)
            else:
                continue
            if anchor is not None:
                anchors[anchor] = size
            stack[-1][1] += size
            if stack[-1][1] > MAX_NODES:
                raise YamlLimitError(
                    f"the document expands to more than {MAX_NODES:,} values, the limit for a workload file "
                    "(an alias such as `*name` counts as everything it repeats, so nested aliases grow "
                    "exponentially); write the values out instead of repeating aliases, or split the file",
                    event.start_mark.line + 1,
                )
    finally:
        loader.dispose()


def parse_yaml(text: str) -> YamlSource:
    """Check the limits, then compose once (for line marks) and construct the plain data from the same node
    graph; raises YamlLimitError, or yaml.YAMLError on bad syntax."""
    check_limits(text)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    source = YamlSource(data=data)
    if node is not None:
        source.lines[()] = node.start_mark.line + 1
        _walk(node, (), source)
    return source


def _walk(node: yaml.Node, path: KeyPath, source: YamlSource) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":  # merge keys: the merged mapping's own keys carry their lines
                _walk(value_node, path, source)
                continue
            child = (*path, key)
            if key in seen:
                source.duplicates.append(
                    Problem(
                        child,
                        line,
                        f"key `{key}` appears twice (first on line {seen[key]}); "
                        "YAML keeps only the last one, so remove one of them",
                    )
                )
            seen[key] = line
            source.lines[child] = line
            _walk(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            source.lines[child] = item.start_mark.line + 1
            _walk(item, child, source)
    elif isinstance(node, yaml.ScalarNode):
        source.spans[path] = (node.start_mark.index, node.end_mark.index)
