"""Read YAML while remembering the line of every key, so each error can point at the line to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from sbench.config.errors import KeyPath, Problem

try:  # libyaml is much faster on large files; the pure-Python loader behaves the same.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass(slots=True)
class YamlSource:
    """Parsed data plus `lines[key path] = 1-based line` for every mapping key and list item."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def parse_yaml(text: str) -> YamlSource:
    """Compose once for line marks, then construct the plain data; raises yaml.YAMLError on bad syntax."""
    node = yaml.compose(text, Loader=_Loader)
    data = yaml.load(text, Loader=_Loader) if node is not None else None
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
