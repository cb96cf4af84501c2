"""Augmentation and the step-keyed training data order."""

import numpy as np
import pytest
import torch

from crowdwatch.data.folders import read_folder
from crowdwatch.data.synthetic import blob_image, write_blob_folder
from crowdwatch.errors import ImageTooLarge
from crowdwatch.train.augment import AugmentParams, apply_crop, crop_transform
from crowdwatch.train.dataset import CropDataset, StepSampler, collate_crops
from crowdwatch.train.validate import load_val_images


@pytest.mark.parametrize("seed", range(8))
def test_crop_keeps_points_on_their_blobs(seed):
    rng = np.random.default_rng(seed)
    image, points = blob_image(rng, (96, 160), 12, radius=4.0)
    params = AugmentParams(crop_size=64, scale_min=0.7, scale_max=1.3, flip=True)
    transform = crop_transform(image.shape[:2], rng, params)
    crop, mapped = apply_crop(image, points, transform, 64)
    assert crop.shape == (64, 64, 3) and mapped.dtype == np.float32
    scale, x0, y0, _ = transform
    expected = ((points * scale - [x0, y0]) >= 0).all(1) & ((points * scale - [x0, y0]) < 64).all(1)
    assert len(mapped) == expected.sum()
    for x, y in mapped:
        c, r = min(int(x), 63), min(int(y), 63)
        assert crop[r, c].mean() < 110, f"point ({x:.1f}, {y:.1f}) is not on a blob"


def test_flip_mirrors_points():
    image = np.zeros((32, 32, 3), np.uint8)
    points = np.array([[5.0, 7.0]], np.float32)
    _, plain = apply_crop(image, points, (1.0, 0.0, 0.0, False), 32)
    _, flipped = apply_crop(image, points, (1.0, 0.0, 0.0, True), 32)
    assert plain.tolist() == [[5.0, 7.0]] and flipped.tolist() == [[27.0, 7.0]]


def test_small_image_is_padded_not_crashed():
    image, points = blob_image(np.random.default_rng(0), (20, 30), 3)
    crop, mapped = apply_crop(image, points, (1.0, 0.0, 0.0, False), 64)
    assert crop.shape == (64, 64, 3) and len(mapped) == 3


def test_data_order_is_a_pure_function_of_seed_and_step(tmp_path):
    groups = [
        read_folder(write_blob_folder(tmp_path / n, 6, size=(48, 48), seed=i), n)
        for i, n in enumerate(["a", "b"])
    ]
    params = AugmentParams(crop_size=32)
    ds = CropDataset(groups, [3.0, 1.0], seed=7, crops=2, params=params)
    again = CropDataset(groups, [3.0, 1.0], seed=7, crops=2, params=params)
    first = collate_crops([ds[key] for key in StepSampler(5, 7, 3)])
    assert first[0].shape == (12, 3, 32, 32) and len(first[1]) == 12
    second = collate_crops([again[key] for key in reversed(list(StepSampler(5, 7, 3)))][::-1])
    assert torch.equal(first[0], second[0])
    picks = [ds.pick(step, 0)[0].dataset for step in range(400)]
    assert 0.65 < picks.count("a") / 400 < 0.85  # weights 3:1
    other = CropDataset(groups, [3.0, 1.0], seed=8, crops=2, params=params)
    assert not torch.equal(first[0], collate_crops([other[k] for k in StepSampler(5, 7, 3)])[0])


def test_training_and_validation_images_over_max_pixels_are_refused(tmp_path):
    group = read_folder(write_blob_folder(tmp_path / "a", 2, size=(48, 40)), "a")
    ds = CropDataset([group], [1.0], seed=0, crops=1, params=AugmentParams(crop_size=32), max_pixels=48 * 40)
    assert ds[(0, 0)][0].shape == (1, 3, 32, 32)  # at the cap: read
    ds.max_pixels = 48 * 40 - 1
    with pytest.raises(ImageTooLarge, match="40x48 = 1,920 pixels"):
        ds[(0, 0)]
    with pytest.raises(ImageTooLarge):
        load_val_images(group, None, max_pixels=48 * 40 - 1)
