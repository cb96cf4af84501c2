"""The training configuration: one YAML file -> one validated :class:`TrainConfig`.

Unknown keys are errors; every error names its key path. Relative dataset paths are resolved against
the directory of the YAML file. The YAML is read, and errors are reported, by the site config's loader
(:mod:`crowdwatch.config.loader`), so both kinds of file fail the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError, ValidationInfo, model_validator

from crowdwatch.choices import DEFAULT_THRESHOLD, PrecisionName
from crowdwatch.config.base import Section as _Strict
from crowdwatch.config.base import resolve_path
from crowdwatch.config.loader import ConfigError, read_yaml, validation_errors
from crowdwatch.data.folders import dataset_names
from crowdwatch.images import DEFAULT_MAX_PIXELS

#: A path relative to the YAML file's folder (``strict=False``: YAML gives paths as strings).
RelativePath = Annotated[Path, Field(strict=False), AfterValidator(resolve_path)]


def _resolve_name(value: str | None, info: ValidationInfo) -> str | None:
    """A weights source: a keyword kept as it is, else a path resolved like :data:`RelativePath`."""
    if value is None or value in _KEYWORDS:
        return value
    resolved = resolve_path(Path(value), info)
    return None if resolved is None else str(resolved)


_KEYWORDS = ("default", "imagenet", "kaiming")


class DatasetConfig(_Strict):
    path: RelativePath = Field(description="folder of <name>.jpg + <name>.txt (and list.txt)")
    name: str | None = Field(None, description="name in logs and metrics; default: the folder name")
    weight: float = Field(1.0, gt=0, description="relative sampling weight")


class DataConfig(_Strict):
    datasets: list[DatasetConfig] = Field(min_length=1)
    val_every: int = Field(10, ge=0, description="every n-th image (sorted by name) is validation; 0 = none")
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="refuse an image over this many pixels (read from its header)"
    )

    @model_validator(mode="after")
    def _unique_names(self) -> DataConfig:
        dataset_names([(d.name, d.path) for d in self.datasets])  # its ValueError names the repeats
        return self


class ModelConfig(_Strict):
    num_candidates: int = Field(4, ge=1)
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, lt=1)
    backbone_init: Annotated[str, AfterValidator(_resolve_name)] = Field(
        "imagenet",
        description=(
            "'imagenet' (torchvision's file from the torch hub cache), 'kaiming' (random), or a "
            "path (relative to this file) to VGG16 features[0:30] ImageNet weights in torchvision's "
            "layout, checked and recorded with its sha256"
        ),
    )
    freeze_blocks: int = Field(
        0, ge=0, le=5, description="keep the first n VGG blocks (1-5) at their initial weights"
    )
    cls_prior: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "start the classification head at this person probability (bias -log((1-p)/p)); "
            "null keeps the default init"
        ),
    )
    init_from: Annotated[str | None, AfterValidator(_resolve_name)] = Field(
        None,
        description=(
            "fine-tune: start the whole network from a crowdwatch checkpoint (a path, relative "
            "to this file, or 'default' for the packaged weights) instead of backbone_init"
        ),
    )


class OptimConfig(_Strict):
    steps: int = Field(gt=0, description="total length of the run in optimiser steps")
    images_per_step: int = Field(8, ge=1)
    crops_per_image: int = Field(4, ge=1)
    crop_size: int = Field(128, ge=16, multiple_of=16)
    scale: Annotated[list[float], Field(min_length=2, max_length=2)] = Field(
        default_factory=lambda: [0.7, 1.3]
    )
    flip: bool = True
    lr: float = Field(1e-4, gt=0)
    lr_backbone: float = Field(1e-5, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(0.1, gt=0)
    lr_drop_step: int | None = Field(None, gt=0, description="multiply both lrs by 0.1 from this step on")
    precision: PrecisionName = "auto"
    device: str = "auto"
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice")
    workers: int = Field(1, ge=0, description="DataLoader worker processes")
    channels_last: bool = Field(
        False,
        description="train in the NHWC memory format: an 11-12% cheaper step on a Zen 3 CPU (profiled), "
        "and the layout of cuDNN's fast bf16/fp16 convolutions on a GPU",
    )
    checkpoint_every: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _scale_order(self) -> OptimConfig:
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be [min, max] with 0 < min <= max, but got {list(self.scale)}")
        return self


class ValidationConfig(_Strict):
    every_steps: int = Field(200, ge=1, description="validate every n steps and at the end")
    longest_side: int | None = Field(768, ge=16, description="downscale validation images to this side")
    max_images: int | None = Field(None, ge=1, description="per dataset, the first n validation images")


class TrainConfig(_Strict):
    seed: int = 0
    data: DataConfig
    model: ModelConfig = ModelConfig()
    train: OptimConfig
    validation: ValidationConfig = ValidationConfig()

    def dataset_names(self) -> list[str]:
        return dataset_names([(d.name, d.path) for d in self.data.datasets])


def parse_config(raw: object, base_dir: Path, source: str = "config") -> TrainConfig:
    """Validate a loaded YAML document; relative paths (datasets, init_from, backbone_init) are taken from
    ``base_dir``, as the site config takes them from its file's folder.

    Raises :class:`~crowdwatch.config.ConfigError` (a usage error) listing every problem by key path.
    """
    try:
        return TrainConfig.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(source, validation_errors(exc)) from None


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training YAML file."""
    path = Path(path)
    return parse_config(read_yaml(path), path.parent.resolve(), str(path))
