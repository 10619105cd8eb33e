"""The data and the model checked before anything starts: a built-in dataset's files, a
user's data read and checked, and the built-in CNN held to the images it gets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import SEARCH_SPACES
from tests.tune.space.spec_files import problems, write
from tune.space.data_checks import data_checks
from tune.space.spec import DatasetSpec, load_spec


def test_a_data_folder_without_the_files_says_where_it_looked(tmp_path: Path) -> None:
    spec = load_spec(SEARCH_SPACES / "fashion_seed.yaml", local=False, driver=False)
    (problem,) = data_checks(
        dataclasses.replace(spec, dataset=DatasetSpec(root=str(tmp_path))), None
    )
    assert problem.path == "dataset" and f"looked in {tmp_path}," in problem.message


def image_folder(root: Path, size: tuple[int, int] = (16, 16)) -> Path:
    for part in ("train", "test"):
        for label, name in enumerate(("a", "b")):
            (root / part / name).mkdir(parents=True)
            for i in range(6):
                pixels = np.full(size[::-1], 40 + 150 * label + i, np.uint8)
                Image.fromarray(pixels).save(root / part / name / f"{i}.png")
    return root


def test_the_built_in_cnn_on_a_folder_of_64x64_images(tmp_path: Path) -> None:
    """The conv blocks' bound follows the images: 64x64 allows 6, so 6 is fine, 7 is not."""
    image_folder(tmp_path / "images", size=(64, 64))
    text = "name: t\ndataset: {folder: images, validation_fraction: 0.25}\nsearch: {conv_layers: %d, epochs: 1}\n"
    spec = load_spec(write(tmp_path, text % 6))
    assert spec.dataset.folder == str(tmp_path / "images")
    (line,) = problems(tmp_path, text % 7)
    assert line.endswith(
        "search.conv_layers: 7 conv+pool blocks do not fit a 64x64 image (at most 6)"
    )


def test_the_built_in_cnn_refuses_images_that_are_not_square(tmp_path: Path) -> None:
    image_folder(tmp_path / "images", size=(16, 8))
    text = "name: t\ndataset: {folder: images, validation_fraction: 0.25}\nsearch: {conv_layers: 1, epochs: 1}\n"
    (line,) = problems(tmp_path, text)
    assert line.endswith(
        "model.factory: the built-in CNN takes square images [C, H, H], not rows of [1, 8, 16] "
        '(your own model: model: {factory: "module:function"})'
    )


def test_an_npz_file_that_is_not_there(tmp_path: Path) -> None:
    (line,) = problems(tmp_path, "name: t\ndataset: {npz: nosuch.npz}\nsearch: {epochs: 1}\n")
    assert line.endswith(f"dataset.npz: '{tmp_path / 'nosuch.npz'}': no such file")
