"""The site configuration: one YAML file -> one validated, typed :class:`Config`.

- :mod:`~crowdwatch.config.schema`: the sections (``model``, ``defaults``, ``cameras`` with their
  ``zones``, ``output``, ``metrics``, ``mqtt``, ``systemd``) as pydantic models that reject unknown keys;
- :mod:`~crowdwatch.config.analytics`: the ``smoothing``, ``exclude`` and ``output.heatmaps`` sections;
- :mod:`~crowdwatch.config.loader`: :func:`load_config` (YAML reading with duplicate-key errors, secret
  substitution, merging ``defaults`` into each camera) and :class:`ConfigError`, whose errors each name a
  key path. The training config (:mod:`crowdwatch.train.config`) reads its YAML and reports its errors
  with the same loader functions.

Secret references and masking live one floor down, in :mod:`crowdwatch.secrets`: the capture code and
the log filter use them too. ``crowdwatch check-config`` is :mod:`crowdwatch.commands.check_config`.
"""

from crowdwatch.config.analytics import ExcludeRegion, HeatmapSettings, SmoothingSettings
from crowdwatch.config.loader import ConfigError, load_config
from crowdwatch.config.mqtt import MqttSettings
from crowdwatch.config.schema import (
    AlertSettings,
    CameraConfig,
    CameraSettings,
    Config,
    CsvSettings,
    MetricsSettings,
    ModelSettings,
    OutputSettings,
    ReconnectSettings,
    SnapshotSettings,
    SystemdSettings,
    VideoSettings,
    ZoneConfig,
)

__all__ = [
    "AlertSettings",
    "CameraConfig",
    "CameraSettings",
    "Config",
    "ConfigError",
    "CsvSettings",
    "ExcludeRegion",
    "HeatmapSettings",
    "MetricsSettings",
    "ModelSettings",
    "MqttSettings",
    "OutputSettings",
    "ReconnectSettings",
    "SmoothingSettings",
    "SnapshotSettings",
    "SystemdSettings",
    "VideoSettings",
    "ZoneConfig",
    "load_config",
]
