"""Point-annotated folders: the validation split, reading images and point files, clear errors."""

import numpy as np
import pytest

from crowdwatch.data.folders import load_image, load_points, read_folder, split_items
from crowdwatch.data.synthetic import write_blob_folder
from crowdwatch.errors import DataError


def test_split_is_every_nth_by_sorted_name_and_disjoint(tmp_path):
    items = read_folder(write_blob_folder(tmp_path / "d", 23, size=(32, 32)))
    val = split_items(items, every=10, part="val")
    train = split_items(items, every=10, part="train")
    assert [i.image.name for i in val] == ["img_0000.png", "img_0010.png", "img_0020.png"]
    assert len(train) == 20 and not {i.image for i in val} & {i.image for i in train}
    assert (
        split_items(items, every=0, part="train") == items and split_items(items, every=0, part="val") == []
    )


def test_grayscale_image_is_read_as_three_channels(tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "g.jpg"), np.full((20, 30), 90, np.uint8))
    image = load_image(tmp_path / "g.jpg")
    assert image.shape == (20, 30, 3) and (image[..., 0] == image[..., 2]).all()


@pytest.mark.parametrize("content", ["1 2\n3\n", "a b\n"])
def test_bad_point_file_names_file_and_line(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=r"bad\.txt: line"):
        load_points(path)


def test_unreadable_image_is_a_clear_error(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image"):
        load_image(tmp_path / "x.jpg")
