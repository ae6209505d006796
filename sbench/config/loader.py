"""Load a workload file: read, parse with line marks, drop inert sai3 keys, validate, cross-check.

Every failure becomes a `ConfigError` whose message names the file, the line, the key path and what to do;
the CLI prints it without a traceback and exits 2.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sbench.config.inert import strip_inert
from sbench.config.models import Config
from sbench.config.overrides import ControllerFlags, apply_controller_flags
from sbench.config.problems import KeyPath, Problem, config_error, format_path
from sbench.config.s3dlio import translate_s3dlio
from sbench.config.secrets import redact_secrets
from sbench.config.validation import cross_check
from sbench.config.yamlsource import MAX_DOCUMENT_CHARS, YamlLimitError, YamlSource, parse_yaml
from sbench.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(slots=True)
class LoadedConfig:
    """A validated config plus what the user should know about it (warnings) and where it came from."""

    config: Config
    warnings: list[str] = field(default_factory=list)
    source_text: str = ""
    path: Path | None = None
    #: 1-based YAML line of every key path, for errors raised later (e.g. an unreachable endpoint).
    lines: dict[KeyPath, int] = field(default_factory=dict)
    #: keys `sbench run` flags set (config.overrides), as metadata.json records them; empty without flags
    overrides: dict[str, Any] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def where(self, path: KeyPath) -> str:
        """`file.yaml:12: workload[2].path`: prefix for errors other layers raise about a key at run time."""
        line = self.line_of(path)
        place = f"{self.path}:{line}" if self.path and line else str(self.path or "config")
        return f"{place}: {format_path(path)}"


def load_config(
    path: Path | str, flags: ControllerFlags | None = None, *, workload_used: bool = True
) -> LoadedConfig:
    """Read and validate the workload file at `path` (ConfigError on any problem), with the controller
    `flags` of `sbench run` applied to it first (config.overrides). `workload_used=False` (`sbench
    autotune`, which makes its own workloads): the objects the workload reads need not exist."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > 4 * MAX_DOCUMENT_CHARS:  # refused before reading (a UTF-8 character is at most 4 bytes)
            raise ConfigError(
                f"{path}: is {size:,} bytes; sbench reads workload files of at most {MAX_DOCUMENT_CHARS:,} "
                "characters (1 MiB; real ones are a few KB), so this is not a workload file: check the path"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: the workload file does not exist; check the path (relative paths start from "
            f"{Path.cwd()})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"{path}: is a directory, not a workload file; pass the .yaml file itself"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"{path}: permission denied while reading the workload file; check its mode"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: is not a text file (byte {exc.start} is not UTF-8); pass a YAML workload file"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}); check the path") from None
    return load_config_text(text, source=path, flags=flags, workload_used=workload_used)


def load_config_text(
    text: str,
    *,
    source: Path | None = None,
    flags: ControllerFlags | None = None,
    workload_used: bool = True,
) -> LoadedConfig:
    """Validate YAML text (tests and `ray job` entry points use this without a file)."""
    label = str(source) if source else "config"
    parsed = _parse(text, label, source)
    if not isinstance(parsed.data, dict):
        kind = "empty" if parsed.data is None else f"a YAML {type(parsed.data).__name__}"
        raise ConfigError(
            f"{label}: is {kind}, not a workload: a workload file is a YAML mapping with at least "
            "`workload:` (a list of ops) and usually `target:` and `duration:`"
        )
    warnings = [
        Problem(key_path, parsed.line_of(key_path), f"has no effect in sbench ({why})").render(source)
        for key_path, why in strip_inert(parsed.data)
    ]
    translated = [Problem(path, parsed.line_of(path), why) for path, why in translate_s3dlio(parsed.data)]
    if translated:
        raise config_error(translated, source)
    overrides = apply_controller_flags(parsed.data, flags, label) if flags is not None else {}
    try:
        try:
            config = Config.model_validate(parsed.data)
        except ValidationError as exc:
            raise config_error(_problems_from(exc, parsed), source) from None
        problems, notes = cross_check(config, parsed, workload_used=workload_used)
        if problems:
            raise config_error(problems, source)
    except ConfigError as exc:
        if not overrides:
            raise
        flagged = ", ".join(overrides)
        raise ConfigError(exc.message, hint=f"{flagged} came from `sbench run` flags, not the file") from None
    warnings.extend(note.render(source) for note in notes)
    return LoadedConfig(
        config=config,
        warnings=warnings,
        source_text=redact_secrets(text, parsed.spans),
        path=source,
        lines=parsed.lines,
        overrides=overrides,
    )


def load_model_file(path: Path, model: type[ModelT], what: str) -> ModelT:
    """Another YAML file of sbench's (a replay's remap rules, its backpressure settings) validated by
    `model` with the same messages as a workload file: file, line, key path, did-you-mean; exit 2."""
    return load_model_source(path, model, what)[0]


def load_model_source(path: Path, model: type[ModelT], what: str) -> tuple[ModelT, YamlSource]:
    """`load_model_file`, and the parsed document with its line marks (for the file's own cross-checks)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{path}: the {what} cannot be read ({why}); check the path") from None
    parsed = _parse(text, str(path), path)
    if not isinstance(parsed.data, dict):
        raise ConfigError(f"{path}: is not a YAML mapping; a {what} is one (see `sbench replay --help`)")
    try:
        return model.model_validate(parsed.data), parsed
    except ValidationError as exc:
        raise config_error(_problems_from(exc, parsed, model), path, what=what) from None


def _parse(text: str, label: str, source: Path | None) -> YamlSource:
    """The YAML document with line marks; ConfigError (file, line) for bad syntax or duplicate keys."""
    try:
        parsed = parse_yaml(text)
    except YamlLimitError as exc:
        raise ConfigError(f"{label}{f':{exc.line}' if exc.line else ''}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError(
            f"{label}{line}: is not valid YAML ({what}); fix the syntax at that line "
            "(check indentation, colons and quotes)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: is not valid YAML ({exc}); fix the file's syntax") from None
    if parsed.duplicates:
        raise config_error(parsed.duplicates, source)
    return parsed


# ----------------------------------------------------------------------------------------------------
# pydantic errors -> located problems


def _problems_from(
    exc: ValidationError, parsed: YamlSource, root: type[BaseModel] = Config
) -> list[Problem]:
    problems: dict[tuple[KeyPath, str], Problem] = {}
    suggested: set[KeyPath] = set()  # (parent..., key) that a did-you-mean already points at
    missing: list[tuple[KeyPath, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _data_path(parsed.data, loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            message, suggestion = _unknown_key_message(loc, path, root)
            if suggestion:
                suggested.add((*path[:-1], suggestion))
        elif kind == "missing":
            missing.append((path, f"required key `{loc[-1]}` is missing; add it"))
            continue
        else:
            if kind == "union_tag_invalid":
                tag_key = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
                tag_key = "type" if tag_key == "kind" else tag_key  # size specs say `type:` in YAML
                path = (*path, tag_key) if tag_key else path
            message = _value_message(error, parsed, path)
        problems.setdefault((path, message), Problem(path, parsed.line_of(path), message))
    for path, message in missing:
        if path not in suggested:  # a typo'd key already explains why this one is missing
            problems.setdefault((path, message), Problem(path, parsed.line_of(path), message))
    return list(problems.values())


def _data_path(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """Follow `loc` through the YAML data, skipping pydantic's union tags and model names."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(node.get("config"), dict) and part in node["config"]:
            node = node["config"][part]  # a stage body nested under `config:` (sai3 docs form)
            path += ["config", part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part, node):
            path.append(part)  # a missing key: point at the parent's line, name the key
            break
    return tuple(path)


def _is_tag(part: str, node: dict[str, Any]) -> bool:
    # Discriminated unions put the tag value into the location (`workload.0.get.weight`).
    tag = node.get("op", node.get("type", node.get("kind")))
    return part == tag or "[" in part or part in {"function-after", "function-before"}


def _value_message(error: dict[str, Any], parsed: YamlSource, path: KeyPath) -> str:
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    node: Any = parsed.data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    given = (
        f"got {node!r}: "
        if isinstance(node, str | int | float | bool) and error["type"] != "value_error"
        else ""
    )
    kind = error["type"]
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        if "'fixed'" in str(ctx.get("expected_tags")):
            return (
                f"{ctx.get('tag')!r} is not a size distribution; use `type: uniform` or `type: lognormal` "
                "(a fixed size is a bare value, e.g. `size_spec: 1MiB`)"
            )
        return f"{ctx.get('tag')!r} is not a valid choice; use one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        tag = str(error.get("ctx", {}).get("discriminator", "op")).strip("'")
        return f"needs `{tag}:` to say which kind it is"
    return f"{given}{msg[0].lower()}{msg[1:]}" if msg else given


def _unknown_key_message(
    loc: tuple[Any, ...], path: KeyPath, root: type[BaseModel] = Config
) -> tuple[str, str | None]:
    key = str(path[-1]) if path else str(loc[-1])
    allowed = _allowed_keys(loc[:-1], root)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) if allowed else []
    hint = f" Did you mean `{close[0]}`?" if close else ""
    if allowed:
        hint += f" Keys allowed here: {', '.join(sorted(allowed))}."
    return f"unknown key `{key}`.{hint}", (close[0] if close else None)


def _allowed_keys(loc: tuple[Any, ...], root: type[BaseModel] = Config) -> list[str]:
    """Keys of the model that sits at `loc` (pydantic location, tags included) under `root`."""
    model = _model_at(root, list(loc))
    if model is None:
        return []
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if name == "kind":
            continue
        keys.add(name)
        alias = info.validation_alias
        if alias is not None and hasattr(alias, "choices"):
            keys.update(str(choice) for choice in alias.choices)
    if model.__name__ == "StageConfig":
        keys.add("config")
    if model.__name__ in {"FixedSize", "UniformSize", "LognormalSize"}:
        keys.discard("value")
        keys.add("type")
    return sorted(keys)


def _model_at(annotation: Any, loc: list[Any]) -> type[BaseModel] | None:
    candidates = _unwrap(annotation)
    if not loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        return models[0] if len(models) == 1 else None
    head, rest = loc[0], loc[1:]
    for cand in candidates:
        origin = typing.get_origin(cand)
        if origin is list and isinstance(head, int):
            return _model_at(typing.get_args(cand)[0], rest)
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            if isinstance(head, str) and head in cand.model_fields:
                if len(candidates) > 1 and not _tag_matches(cand, head):
                    continue
                return _model_at(cand.model_fields[head].annotation, rest)
            if _tag_matches(cand, head):
                return _model_at(cand, rest)
    return None


def _tag_matches(model: type[BaseModel], tag: Any) -> bool:
    for name in ("op", "kind"):
        field_info = model.model_fields.get(name)
        if field_info is not None and typing.get_origin(field_info.annotation) is typing.Literal:
            return tag in typing.get_args(field_info.annotation)
    return False


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [annotation]
