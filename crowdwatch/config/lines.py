"""A camera's counting lines (``cameras[].lines``): two points in source-frame pixels, and the names of
the sides a person crosses from and to. Only the shape of the YAML is checked here."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from crowdwatch.config.base import Point, Section

__all__ = ["LineConfig"]

_Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]


class LineConfig(Section):
    id: _Name
    points: list[Point] = Field(min_length=2, max_length=2, description="[[x, y], [x, y]], source pixels")
    in_: _Name = Field(alias="in", description="name of the side a crossing enters")
    out: _Name = Field(description="name of the side a crossing leaves")

    @model_validator(mode="after")
    def _a_real_line(self) -> LineConfig:
        (x0, y0), (x1, y1) = self.points
        if (x0, y0) == (x1, y1):
            raise ValueError("the line's two points are the same point")
        if self.in_ == self.out:
            raise ValueError(f"in and out must differ, but both are {self.in_!r}")
        return self
