"""Config sections for flow: a camera's counting ``lines`` and how its heads are tracked.

Cameras: ``lines: [{id, points: [[x, y], [x, y]], in: <name>, out: <name>}]`` (``in`` names the
direction of tracks coming from the left of the first point -> second point, as seen on the image;
see :mod:`crowdwatch.lines`); ``defaults``/cameras: ``tracking: {max_speed_px_s, max_missed}``.
Kept beside :mod:`crowdwatch.config.schema`, which imports them into its sections.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from crowdwatch.config.base import Point, Section

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: A name that is also a CSV column suffix, a Prometheus label value and an MQTT topic level.
Name = Annotated[str, Field(pattern=SLUG_PATTERN, description="lower-case letters, digits, '-' and '_'")]


class LineConfig(Section):
    id: Name
    points: list[Point] = Field(
        min_length=2, max_length=2, description="[[x, y], [x, y]]: the segment, in source-frame pixels"
    )
    in_name: Name = Field("in", alias="in", description="direction from the left of first -> second point")
    out_name: Name = Field("out", alias="out", description="the opposite direction")
    band_px: float = Field(
        4.0, ge=0, le=1000, description="hysteresis: a track changes side only beyond this distance"
    )

    @field_validator("points")
    @classmethod
    def _distinct(cls, points: list[list[float]]) -> list[list[float]]:
        if points[0] == points[1]:
            raise ValueError("the two points must differ")
        return points

    @model_validator(mode="after")
    def _two_names(self) -> LineConfig:
        if self.in_name == self.out_name:
            raise ValueError(f"in and out must differ, but both are {self.in_name!r}")
        return self


class TrackingSettings(Section):
    max_speed_px_s: float = Field(
        150.0,
        gt=0,
        le=100_000,
        description="fastest a head moves on the image (px per second of capture time)",
    )
    max_missed: int = Field(
        3, ge=0, le=100, description="frames in a row a track may go undetected before it ends"
    )
    max_gap_s: float = Field(
        2.0,
        gt=0,
        le=3600,
        description="frames further apart than this are not linked: no crossings are counted across them",
    )
