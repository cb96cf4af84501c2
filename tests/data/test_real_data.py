"""The real crowd folders read as the training code expects (skipped without ../shared/data)."""

import numpy as np
import pytest

from crowdwatch.data.folders import load_image, load_points, read_folder, split_items
from crowdwatch.train.augment import AugmentParams, random_crop

# The data is found (or these tests skipped) by the shared_data fixture of tests/conftest.py.
pytestmark = pytest.mark.data

# folder, images, heads. The data README says 6,084 heads for Mall: that total counts the 200 lines
# of list.txt too; its point files hold 5,884.
FOLDERS = [
    ("shanghaitech/part_A_train", 300, 162_413),
    ("shanghaitech/part_B_train", 400, 49_151),
    ("mall/train", 200, 5_884),
]


@pytest.mark.parametrize(("folder", "images", "heads"), FOLDERS)
def test_folder_counts_match_the_readme_and_split_holds_out_a_tenth(shared_data, folder, images, heads):
    items = read_folder(shared_data / folder)
    assert len(items) == images
    assert sum(len(load_points(i.points)) for i in items) == heads
    assert len(split_items(items, every=10, part="val")) == images // 10


def test_grayscale_shanghaitech_images_become_three_channels(shared_data):
    items = read_folder(shared_data / "shanghaitech/part_A_train")
    gray = [i for i in items[:120] if load_image(i.image).std(axis=2).max() == 0]
    assert gray, "expected some grayscale images among the first 120 of part A"
    assert load_image(gray[0].image).shape[2] == 3


def test_crops_of_a_real_image_keep_points_inside(shared_data):
    item = read_folder(shared_data / "mall/train")[0]
    image, points = load_image(item.image), load_points(item.points)
    rng = np.random.default_rng(0)
    for _ in range(10):
        crop, mapped = random_crop(image, points, rng, AugmentParams())
        assert crop.shape == (128, 128, 3)
        assert ((mapped >= 0) & (mapped <= 128)).all()
