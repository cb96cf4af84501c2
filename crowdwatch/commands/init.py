"""``crowdwatch init SOURCE``: open a camera with the real capture code and write a first config for it.

SOURCE is an ``rtsp://`` (or ``http(s)://``) URL, a video file or a device index. The source is opened
exactly as ``crowdwatch run`` opens it (probe, bounded timeouts) and one frame is read; then it prints
the resolution, frame rate and codec, or the exact reason it could not (exit 1). It writes a minimal
config that ``check-config`` accepts, with the live view on 127.0.0.1, and one frame with a
coordinate grid beside it, to read zone corners off.

A password in the URL (``user:password@``, or a ``password=``/``token=`` query value) is used for this
one open and never written: the file gets ``${credential:camera_<id>}`` in its place, and the command
says where to put the value. Output and errors show the URL masked.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml
from pydantic import ValidationError

from crowdwatch.capture.base import SourceError, Stopped
from crowdwatch.capture.opencv import OpenCVCapture, open_capture
from crowdwatch.config import CameraConfig
from crowdwatch.config.loader import validation_errors
from crowdwatch.config.schema import SLUG_PATTERN
from crowdwatch.drawing import draw_grid
from crowdwatch.errors import UsageError
from crowdwatch.images import as_bgr
from crowdwatch.secrets import SecretUrl, SecretValues, mask_url

__all__ = ["build_parser", "main", "split_secrets"]

WEB_PORT = 9110
#: Longest init waits for the first frame once the source is open.
FIRST_FRAME_S = 10.0
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@(?P<rest>.*)$")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&;](?P<name>password|passwd|pass|pwd|token|auth|key|secret)=)(?P<value>[^&#;]*)", re.I
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crowdwatch init",
        description="Open a camera (rtsp:// URL, video file or device index) with the real capture code, "
        "report its resolution, frame rate and codec (or why it cannot be opened), and write a "
        "minimal config with the live view on 127.0.0.1, plus one frame with a coordinate grid.",
    )
    parser.add_argument("source", help="rtsp://[user:password@]host[:port]/path, a video file, or 0, 1, ...")
    parser.add_argument("--id", dest="camera_id", default=None,
                        help="its name in metrics, CSV and the page (default: from SOURCE)")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=Path("site.yaml"), help="config file to write (site.yaml)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return parser


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:63]
    return slug or "camera"


def default_id(source: str) -> str:
    if source.isascii() and source.isdigit():
        return f"device{source}"
    match = _USERINFO.match(source)
    rest = match.group("rest") if match else source.split("://", 1)[-1]
    if "://" in source:
        return _slug(rest.split("/", 1)[0].rsplit(":", 1)[0])
    return _slug(Path(source).stem)


def split_secrets(source: str, camera_id: str) -> tuple[str, dict[str, str]]:
    """(the URL to write, {credential name: value}): each password in ``source`` becomes a
    ``${credential:NAME}`` reference. ``$`` in the rest is escaped as ``$$``."""
    secrets: dict[str, str] = {}
    text = source.replace("${", "$${")
    match = _USERINFO.match(text)
    if match and ":" in match.group("userinfo"):
        user, password = match.group("userinfo").split(":", 1)
        name = f"camera_{camera_id}"
        secrets[name] = password.replace("$${", "${")
        text = f"{match.group('scheme')}{user}:${{credential:{name}}}@{match.group('rest')}"

    def query(m: re.Match[str]) -> str:
        name = f"camera_{camera_id}_{m.group('name').lower()}"
        secrets[name] = m.group("value").replace("$${", "${")
        return f"{m.group('key')}${{credential:{name}}}"

    if "://" in text:
        text = _SECRET_QUERY.sub(query, text)
    return text, secrets


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    source: str = args.source
    camera_id = args.camera_id or default_id(source)
    if not re.match(SLUG_PATTERN, camera_id):
        raise UsageError(f"--id {camera_id!r}: expected 1-63 lower-case letters, digits, '-' or '_'")
    out: Path = args.out
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists: choose another --out, or --force to overwrite it")
    written_url, credentials = split_secrets(source, camera_id)
    secrets = SecretValues(credentials.values())
    try:
        camera = CameraConfig.model_validate(
            {"id": camera_id, "url": int(source) if source.isascii() and source.isdigit() else source},
            context={"secrets": secrets, "base_dir": Path.cwd()},
        )
    except ValidationError as exc:
        why = "; ".join(message for _, message in validation_errors(exc, secrets))
        raise UsageError(f"{secrets.scrub(mask_url(source))}: not a camera source: {why}") from None
    if (
        isinstance(camera.url, SecretUrl)
        and camera.kind == "file"
        and not Path(camera.url.reveal()).is_file()
    ):
        raise UsageError(f"{camera.display_url}: no such file")
    shown = secrets.scrub(camera.display_url)
    print(f"opening {shown} ...")
    try:
        width, height, fps, codec, frame = _open(camera)
    except SourceError as exc:
        print(f"crowdwatch: error: {secrets.scrub(str(exc))}", file=sys.stderr)
        return 1
    rate = f"{fps:g} fps" if fps else "frame rate unknown"
    print(f"{camera_id}: {width}x{height}, {rate}, codec {codec or 'unknown'}")
    if isinstance(camera.url, int):
        written: int | str = camera.url
    elif camera.kind == "file":
        written = _relative(Path(camera.url.reveal()), out.resolve().parent)
    else:
        written = written_url
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        _config_text(camera_id, written, shown, width, height, fps, codec, out.stem), encoding="utf-8"
    )
    grid = out.with_name(f"{out.stem}-{camera_id}-grid.jpg")
    if not cv2.imwrite(str(grid), draw_grid(frame)):
        print(f"crowdwatch: warning: could not write {grid}", file=sys.stderr)
    else:
        print(f"wrote {grid} (one frame with a coordinate grid, in source-frame pixels)")
    print(f"wrote {out}")
    _next_steps(out, credentials)
    return 0


def _open(camera: CameraConfig) -> tuple[int, int, float, str, np.ndarray]:
    stop = threading.Event()
    try:
        capture = open_capture(camera, stop)
    except Stopped:  # never set here; kept for the protocol
        raise SourceError(camera.id, "stopped") from None
    try:
        deadline = time.monotonic() + max(FIRST_FRAME_S, camera.read_timeout_s)
        image = None
        while image is None and time.monotonic() < deadline:
            if not capture.grab():
                break
            ok, image = capture.retrieve()
            if not ok:
                image = None
        if image is None:
            raise SourceError(camera.id, f"opened {camera.display_url}, but no frame could be read")
        frame = as_bgr(image)
        height, width = frame.shape[:2]
        codec = capture.describe()[2] if isinstance(capture, OpenCVCapture) else ""
        return width, height, capture.nominal_fps, codec, frame
    finally:
        capture.release()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _config_text(
    camera_id: str, url: int | str, shown: str, width: int, height: int, fps: float, codec: str, out_stem: str
) -> str:
    head = (
        f"# crowdwatch config for {shown}: {width}x{height}, "
        f"{f'{fps:g} fps' if fps else 'frame rate unknown'}, codec {codec or 'unknown'}.\n"
        "# Every option with its default: configs/site.yaml in the crowdwatch sources.\n"
        f"# While `crowdwatch run` runs, http://127.0.0.1:{WEB_PORT}/ shows what the camera sees; draw\n"
        "# zones, exclusions and lines there and paste the block it shows under this camera.\n"
    )
    body = {
        "cameras": [{"id": camera_id, "url": url, "fps": 5}],
        "output": {"dir": f"runs/{_slug(out_stem)}"},
        "web": {"enabled": True, "address": "127.0.0.1", "port": WEB_PORT},
    }
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def _next_steps(out: Path, credentials: dict[str, str]) -> None:
    lines = ["", "next:"]
    if credentials:
        lines.append(
            "  the password is not in the file; give it as a credential (a file named after it in "
            "$CREDENTIALS_DIRECTORY; under systemd, see docs/deployment.md):"
        )
        lines.append("    export CREDENTIALS_DIRECTORY=/path/to/a/private/folder")
        lines += [f"    printf '%s' 'THE-VALUE' > \"$CREDENTIALS_DIRECTORY/{name}\"" for name in credentials]
    lines += [
        f"  crowdwatch check-config {out}",
        f"  crowdwatch run {out}",
        f"  open http://127.0.0.1:{WEB_PORT}/",
    ]
    print("\n".join(lines))
