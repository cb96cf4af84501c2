"""``POST /api/v1/validate``: the shapes drawn on the page, checked by the real schema, without state.

The page sends one camera's ``zones``, ``exclude`` and ``lines`` as YAML. They replace those keys of
the running camera's config, and the result is validated as :class:`~crowdwatch.config.CameraConfig`
with the loader's own error texts and key paths (``cameras[0].zones[1].polygon``). Nothing is kept or
written, secret references are refused (the editor never emits them), and the YAML is size-capped.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from crowdwatch.config import CameraConfig, Config
from crowdwatch.config.loader import key_path, validation_errors
from crowdwatch.config.schema import PATTERN_HELP

__all__ = ["EDITABLE_KEYS", "MAX_BLOCK_BYTES", "validate_block"]

EDITABLE_KEYS = ("zones", "exclude", "lines")
MAX_BLOCK_BYTES = 64 * 1024
_MAX_NODES = 10_000
_MAX_DEPTH = 16


def _parse(text: str) -> Any:
    """The YAML block, or ValueError (syntax, aliases, size)."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        seen, stack = 0, [(root, 1)]
        while stack:
            node, depth = stack.pop()
            seen += 1
            if seen > _MAX_NODES or depth > _MAX_DEPTH:
                raise ValueError("the block is too large or too deeply nested for a camera's shapes")
            if isinstance(node, yaml.MappingNode):
                stack.extend((child, depth + 1) for pair in node.value for child in pair)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((child, depth + 1) for child in node.value)
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"YAML syntax error{where}: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def validate_block(config: Config, camera_id: str, text: str) -> list[tuple[str, str]]:
    """Errors (key path, message) of ``text`` as the shapes of ``camera_id``; [] when it is valid."""
    index = next((i for i, cam in enumerate(config.cameras) if cam.id == camera_id), None)
    if index is None:
        return [("camera", f"no camera {camera_id!r} in the running config")]
    prefix = f"cameras[{index}]"
    if len(text.encode()) > MAX_BLOCK_BYTES:
        return [(prefix, f"the block is over {MAX_BLOCK_BYTES} bytes")]
    if "${" in text:
        return [(prefix, "secret references (${...}) have no place in shapes")]
    try:
        block = _parse(text)
    except ValueError as exc:
        return [(prefix, str(exc))]
    if block is None:
        block = {}
    if not isinstance(block, dict):
        return [(prefix, "expected a mapping with zones, exclude and/or lines")]
    errors = [
        (f"{prefix}.{key}", f"only {', '.join(EDITABLE_KEYS)} can be checked here")
        for key in block
        if key not in EDITABLE_KEYS
    ]
    if errors:
        return errors
    camera = config.cameras[index]
    data: dict[str, Any] = camera.model_dump(by_alias=True)
    data["url"] = camera.url  # the real value (a dump is masked); validated as is, never shown
    data.update(block)
    try:
        CameraConfig.model_validate(data, context={"secrets": config.secrets})
    except ValidationError as exc:
        for path, message in validation_errors(exc, config.secrets, PATTERN_HELP):
            errors.append((f"{prefix}.{path}" if path else prefix, message))
    errors += _duplicates(block, prefix)
    return errors


def _duplicates(block: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    errors = []
    for key in ("zones", "lines"):
        items = block.get(key)
        seen: dict[str, int] = {}
        for i, item in enumerate(items if isinstance(items, list) else []):
            ident = item.get("id") if isinstance(item, dict) else None
            if isinstance(ident, str):
                if ident in seen:
                    where = key_path((key, i, "id"))
                    also = f"{key}[{seen[ident]}]"
                    errors.append((f"{prefix}.{where}", f"duplicate id {ident!r} (also {also})"))
                seen.setdefault(ident, i)
    return errors
