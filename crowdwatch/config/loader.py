"""Loading a config file: YAML in, a validated model or a :class:`ConfigError` listing every problem out.

``load_config(path)`` reads the YAML (syntax errors keep their line and column, duplicate keys are
errors), substitutes ``${env:...}``/``${credential:...}`` references (see :mod:`crowdwatch.secrets`),
merges the global ``defaults`` into every camera (a camera may override any of them, and single keys
of ``reconnect``), validates everything, and resolves relative paths against the config file's folder.
Every problem is reported at once, each with its key path (``cameras[1].zones[0].polygon``); error
texts are built from pydantic's ``loc``/``msg`` only and scrubbed, so a resolved secret never shows.

:func:`read_yaml` and :func:`validation_errors` are shared with the training config
(:mod:`crowdwatch.train.config`), so both files report errors the same way.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crowdwatch.config.mqtt import TlsFileError, tls_context
from crowdwatch.config.schema import PATTERN_HELP, Config
from crowdwatch.errors import UsageError
from crowdwatch.secrets import SecretReferenceError, SecretValues, substitute

__all__ = ["ConfigError", "key_path", "load_config", "read_yaml", "validation_errors"]


class ConfigError(UsageError):
    """An invalid config file. ``errors`` lists ``(key_path, message)``; ``path`` is the file."""

    def __init__(self, path: str | Path, errors: Sequence[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.errors = list(errors)
        lines = "\n".join(f"  {key or '<top level>'}: {message}" for key, message in self.errors)
        noun = "error" if len(self.errors) == 1 else "errors"
        super().__init__(f"{self.path}: invalid configuration ({len(self.errors)} {noun}):\n{lines}")


#: Configs are hand-written files of a few kilobytes; anything this large is a mistake or an attack.
MAX_CONFIG_BYTES = 1024 * 1024
#: Nodes the document may expand to with its aliases followed (a "billion laughs" stops here).
MAX_EXPANDED_NODES = 100_000
#: Nesting depth of mappings and sequences.
MAX_DEPTH = 64
#: Digits of an integer: nothing in a config needs more than 64 bits (Python refuses over 4300 at all).
MAX_INT_DIGITS = 19
#: What a path that is not a regular file is, for the error message.
_FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last) and keys that are
    not plain values, and keeps YAML merge keys (``<<: *defaults``) working."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden by the mapping's own keys
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "mapping" if isinstance(key_node, yaml.MappingNode) else "sequence"
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a key must be a plain value such as a name, but got a {kind}",
                    key_node.start_mark,
                )
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        self.flatten_mapping(node)  # resolve << merge keys (SafeConstructor's own handling)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = len(str(node.value).lstrip("+-").replace("_", ""))
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {digits} digits; expected at most {MAX_INT_DIGITS} (a 64-bit integer)",
                node.start_mark,
            )
        value: int = super().construct_yaml_int(node)
        return value


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def _check_size(root: yaml.Node) -> str | None:
    """What is wrong with the composed document's size (aliases followed) or depth, if anything."""
    visited = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        visited += 1
        if visited > MAX_EXPANDED_NODES:
            return (
                f"the document expands to more than {MAX_EXPANDED_NODES} values once its aliases "
                "(*name) are followed; use fewer or smaller anchors"
            )
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        if isinstance(node, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
    return None


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            path, [("", f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}")]
        ) from None


def _read_capped(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (symlinks followed) of at most :data:`MAX_CONFIG_BYTES`.

    A device (``/dev/zero``), a FIFO or a directory is refused before it is opened for reading, and
    the read stops at the cap whatever the file claims its size is (a FIFO swapped in after the check
    does not block: it is opened non-blocking, and refused)."""
    _refuse_special(path, path.stat().st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _refuse_special(path, info.st_mode)
        data = f.read(MAX_CONFIG_BYTES + 1) if info.st_size <= MAX_CONFIG_BYTES else b""
    size = max(info.st_size, len(data))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            path, [("", f"file is {size} bytes; a config may be at most {MAX_CONFIG_BYTES} bytes")]
        )
    return data


def _refuse_special(path: Path, mode: int) -> None:
    kind = _FILE_KINDS.get(stat.S_IFMT(mode))
    if kind is not None:
        raise ConfigError(path, [("", f"not a regular file: {kind}; expected a YAML file")])


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (None for an empty file); :class:`ConfigError` if unreadable, not
    a regular file, too large, not UTF-8 (with the position), not YAML (with line and column), holding
    a duplicate or non-scalar key or an integer of more than :data:`MAX_INT_DIGITS` digits, nested too
    deeply, or expanding through aliases beyond :data:`MAX_EXPANDED_NODES`."""
    try:
        text = _decode(path, _read_capped(path))
    except FileNotFoundError:
        raise ConfigError(path, [("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read file ({exc.__class__.__name__})")]) from None
    loader = _UniqueKeyLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        problem = _check_size(root)
        if problem is not None:
            raise ConfigError(path, [("", problem)])
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, [("", f"YAML syntax error at {where}{problem}")]) from None
    except RecursionError:
        raise ConfigError(path, [("", f"nested more than {MAX_DEPTH} levels deep")]) from None
    finally:
        loader.dispose()


def key_path(loc: Sequence[str | int]) -> str:
    """``("cameras", 1, "zones", 0, "polygon")`` -> ``cameras[1].zones[0].polygon``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_errors(
    exc: ValidationError,
    secrets: SecretValues | None = None,
    pattern_help: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(key_path, message) from loc/msg only: pydantic's own text would echo the input value.

    Messages are scrubbed of ``secrets``; ``pattern_help`` replaces a pattern mismatch's regex by a
    sentence, by the field's name.
    """
    secrets = secrets if secrets is not None else SecretValues()
    out = []
    for err in exc.errors(include_url=False):  # the input is looked at, never shown
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "finite_number":
            nan = isinstance(err["input"], float) and math.isnan(err["input"])
            message = (
                "not a number (NaN); expected a finite number" if nan else "must be finite, not infinity"
            )
        elif err["type"] == "extra_forbidden":
            message = "unknown key (not allowed here; check the spelling)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = "expected a mapping (key: value pairs)"
        elif err["type"] == "string_pattern_mismatch" and pattern_help:
            message = pattern_help.get(str(loc[-1]) if loc else "", message)
        out.append((key_path(loc), secrets.scrub(message)))
    return list(dict.fromkeys(out))


def _substitute_all(
    node: Any, loc: tuple[str | int, ...], secrets: SecretValues, errors: list[tuple[str, str]]
) -> Any:
    if isinstance(node, str):
        try:
            return substitute(node, secrets)
        except SecretReferenceError as exc:
            errors.append((key_path(loc), str(exc)))
            return node
    if isinstance(node, dict):
        return {k: _substitute_all(v, (*loc, str(k)), secrets, errors) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_all(v, (*loc, i), secrets, errors) for i, v in enumerate(node)]
    return node


def _ids(items: Any) -> list[tuple[int, str]]:
    if not isinstance(items, list):
        return []
    return [
        (i, item["id"])
        for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def _duplicate_ids(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Camera ids unique in the file, zone ids unique per camera (checked on the raw data, so they are
    reported together with every other error)."""
    errors = []
    seen: dict[str, int] = {}
    for i, camera_id in _ids(data.get("cameras")):
        if camera_id in seen:
            errors.append(
                (f"cameras[{i}].id", f"duplicate camera id {camera_id!r} (also cameras[{seen[camera_id]}])")
            )
        seen.setdefault(camera_id, i)
        zones_seen: dict[str, int] = {}
        for j, zone_id in _ids(data["cameras"][i].get("zones")):
            if zone_id in zones_seen:
                errors.append(
                    (f"cameras[{i}].zones[{j}].id", f"duplicate zone id {zone_id!r} in camera {camera_id!r}")
                )
            zones_seen.setdefault(zone_id, j)
    return errors


def load_config(path: str | Path) -> Config:
    """Load, substitute secrets, merge defaults and validate.

    Raises :class:`ConfigError` listing every problem, each with its key path.
    """
    path = Path(path)
    raw = read_yaml(path)
    if raw is None:
        raise ConfigError(
            path, [("", "the file is empty: expected a mapping with at least a 'cameras' list")]
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            path, [("", f"expected a mapping of sections at the top level, got a {type(raw).__name__}")]
        )
    secrets = SecretValues()
    errors: list[tuple[str, str]] = []
    data = _substitute_all(raw, (), secrets, errors)
    config = None
    try:
        config = Config.model_validate(data, context={"base_dir": path.resolve().parent, "secrets": secrets})
    except ValidationError as exc:
        errors.extend(validation_errors(exc, secrets, PATTERN_HELP))
    errors.extend(_duplicate_ids(data))
    if config is not None and config.mqtt.enabled and config.mqtt.tls.enabled:
        try:  # the files run would load only after the model: check them now, for check-config too
            tls_context(config.mqtt.tls)
        except TlsFileError as exc:
            errors.append((exc.key, secrets.scrub(str(exc))))
    if errors:
        raise ConfigError(path, errors)
    assert config is not None
    config._source = path
    config._secrets = secrets
    return config
