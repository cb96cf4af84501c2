"""The exceptions crowdwatch raises for things a user can fix.

Every subclass carries a message written for the person at the terminal; the CLI prints it as
``crowdwatch: error: <message>`` with no traceback. Exceptions keep the data that caused them as
attributes so callers can act on it without parsing the text.
"""

from __future__ import annotations

from pathlib import Path


class CrowdwatchError(Exception):
    """Base class: an error whose message is meant for the user."""

    exit_code = 1


class UsageError(CrowdwatchError):
    """Bad command-line input or configuration (exit code 2)."""

    exit_code = 2


class CheckpointError(UsageError):
    """A weights file that cannot be used. ``path`` is the file, ``reason`` a short tag."""

    def __init__(self, path: str | Path, message: str, *, reason: str = "invalid") -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {message}")


class DataError(UsageError):
    """An image or annotation file that cannot be read. ``path`` is the offending file."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


class ImageTooLarge(UsageError):
    """An image or frame over the pixel cap. ``what`` names it (a path or a camera)."""

    def __init__(self, what: str, width: int, height: int, max_pixels: int) -> None:
        self.what = what
        self.width = width
        self.height = height
        self.max_pixels = max_pixels
        super().__init__(
            f"{what}: {width}x{height} = {width * height:,} pixels is over the pixel cap of "
            f"{max_pixels:,} (raise max_pixels if this is intended)"
        )


class BackboneWeightsMissing(CrowdwatchError):
    """The ImageNet VGG16 weights are not in the torch hub cache (and downloading was not allowed)."""

    def __init__(self, filename: str, cache_path: Path, url: str) -> None:
        self.filename = filename
        self.cache_path = cache_path
        self.url = url
        super().__init__(
            f"ImageNet VGG16 weights not found: put {filename} (from {url}) at {cache_path} "
            f"(set TORCH_HOME to use another cache directory)"
        )


class InferenceUnavailable(CrowdwatchError):
    """The inference pool (``backend: triton``) did not answer in time: the batch's frames are dropped
    (``reason="inference_unavailable"``), not counted. ``reason`` says why, for the log and /healthz."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
