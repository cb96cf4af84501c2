"""scripts/shrink_data.py: smaller copies of annotated folders keep their points and their split."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.data.folders import read_folder, split_items
from crowdwatch.data.synthetic import write_blob_folder

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "shrink_data.py"


def test_shrunk_copy_scales_points_and_keeps_the_validation_split(tmp_path):
    src = write_blob_folder(tmp_path / "blobs", 12, size=(80, 120), max_count=5)
    out = tmp_path / "small"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.5", "--quality", "90", "--out", str(out), f"blobs={src}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    before, after = read_folder(src), read_folder(out / "blobs")
    assert [i.image.stem for i in before] == [i.image.stem for i in after]
    assert [i.image.stem for i in split_items(before, every=4, part="val")] == [
        i.image.stem for i in split_items(after, every=4, part="val")
    ]
    for old, new in zip(before, after, strict=True):
        image = cv2.imread(str(new.image))
        assert new.image.suffix == ".webp" and image.shape == (40, 60, 3)
        old_pts, new_pts = (
            np.array(p.read_text().split(), dtype=float).reshape(-1, 2) for p in (old.points, new.points)
        )  # some images have no heads at all
        np.testing.assert_allclose(new_pts, old_pts * 0.5, atol=0.006)


def test_train_only_copy_holds_exactly_the_training_split(tmp_path):
    src = write_blob_folder(tmp_path / "blobs", 12, size=(80, 120), max_count=5)
    out = tmp_path / "small"
    args = ["--train-only", "4", "--scale", "1", "--out", str(out), f"blobs={src}"]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    expected = [i.image.stem for i in split_items(read_folder(src), every=4, part="train")]
    copied = read_folder(out / "blobs")
    assert [i.image.stem for i in copied] == expected and len(expected) == 9
    held_out = {i.image.stem for i in split_items(read_folder(src), every=4, part="val")}
    assert held_out.isdisjoint(i.image.stem for i in copied)


def test_bad_arguments_are_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "2", "--out", str(tmp_path), "x=y"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "--scale" in proc.stderr
