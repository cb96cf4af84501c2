"""What every section of the site config shares: the strict base model, paths relative to the config
file, and polygons with an area. One copy, used by :mod:`~crowdwatch.config.schema` and the sections it
imports (:mod:`~crowdwatch.config.analytics`, :mod:`~crowdwatch.config.mqtt`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo


class Section(BaseModel):
    """A config section: unknown keys are errors, values are frozen, and types are strict (``fps: true``
    or ``loop: 1`` are errors, not 1.0 and True; ints still fill float fields; ``.nan`` and ``.inf``
    are errors in every number field). Path fields opt out with ``strict=False``: YAML gives them as
    strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """A relative path against the config file's folder (the ``base_dir`` validation context)."""
    base = (info.context or {}).get("base_dir")
    if value is None or value.is_absolute() or base is None:
        return value
    return (Path(base) / value).resolve()


def has_area(polygon: list[list[float]]) -> list[list[float]]:
    """The polygon itself, or ValueError when its points lie on one line (shoelace area 0)."""
    area2 = sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1], strict=True)
    )
    if math.isclose(area2, 0.0, abs_tol=1e-9):
        raise ValueError("polygon has zero area (points on one line?)")
    return polygon


#: Largest size of a coordinate, in source-frame pixels: far beyond any frame, small enough that areas and
#: point-in-polygon tests stay exact in float64 (1e300 overflowed them to a zone count of 0).
MAX_COORDINATE = 1_000_000
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
Point = Annotated[list[Coordinate], Field(min_length=2, max_length=2)]
Polygon = Annotated[list[Point], Field(min_length=3), AfterValidator(has_area)]
