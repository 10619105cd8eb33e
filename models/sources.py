"""A user's own data: a loader function, an .npz file, or a folder of images, each read into
the four arrays every dataset is (train_x, train_y, test_x, test_y), and checked.

x is [N, C, H, W] (images) or [N, features], float or uint8; y holds integer labels 0..K-1.
No torch: the driver reads the data and hands the arrays to the trials (models/data.py makes
them tensors there).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.factory import CodeError, load_function, parse_ref

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DataError(Exception):
    """The data could not be read or does not fit the contract: one line saying why."""


@dataclass(frozen=True)
class Arrays:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...] = ()  # class names where the source has them (a folder's)


def from_loader(ref_text: str, search_dir: str | None, root: str | None) -> Arrays:
    """`load()` or, with `root`, `load(root)`, from the user's module."""
    try:
        function = load_function(parse_ref(ref_text), search_dir)
        takes = len(inspect.signature(function).parameters)
    except CodeError as e:
        raise DataError(str(e)) from e
    except (TypeError, ValueError) as e:
        raise DataError(f"{ref_text}: cannot read its signature: {e}") from e
    if root is not None and takes < 1:
        raise DataError(f"{ref_text} takes no parameter, but dataset.root is given: load(root)")
    try:
        out = function(root) if root is not None else function()
    except Exception as e:  # the user's code failed: its error's last line
        raise DataError(f"{ref_text}() raised {type(e).__name__}: {e}") from e
    if not isinstance(out, tuple | list) or len(out) != 4:
        raise DataError(
            f"{ref_text}() returned {type(out).__name__}; expected a tuple "
            "(train_x, train_y, test_x, test_y)"
        )
    train_x, train_y, test_x, test_y = (
        _array(value, f"{ref_text}() {name}")
        for value, name in zip(out, ("train_x", "train_y", "test_x", "test_y"), strict=True)
    )
    return Arrays(train_x, train_y, test_x, test_y)


def from_npz(path: str) -> Arrays:
    """An .npz file holding x_train, y_train, x_test, y_test (never pickled objects). The
    messages leave the path to the caller, who names it."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError("no such file")
    try:
        with np.load(file, allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(f"lacks {', '.join(missing)} (it has {', '.join(f.files)})")
            train_x, train_y, test_x, test_y = (np.asarray(f[k]) for k in NPZ_KEYS)
            return Arrays(train_x, train_y, test_x, test_y)
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"not a readable .npz file: {e}") from e


def from_folder(path: str) -> Arrays:
    """train/CLASS/*.png|jpg and test/CLASS/*.png|jpg (torchvision's ImageFolder layout). Every
    image is read once, resized to the first image's size, and kept as uint8 [N, C, H, W]."""
    from PIL import Image  # Pillow comes with torchvision; needed only for a folder

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError("no such folder")
    classes = _classes(root / "train")
    size: tuple[int, int] | None = None
    mode: str | None = None
    parts = []
    for part in ("train", "test"):
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in (
                sorted((root / part / name).iterdir()) if (root / part / name).is_dir() else []
            ):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    with Image.open(file) as opened:
                        mode = mode or ("L" if opened.mode in ("L", "1", "I", "F") else "RGB")
                        image = opened.convert(mode)
                        size = size or image.size
                        images.append(np.asarray(image.resize(size)))
                except OSError as e:
                    raise DataError(f"{file}: not an image: {e}") from e
                labels.append(label)
        if not images:
            raise DataError(f"{root / part} holds no .png or .jpg image under a class folder")
        x = np.stack(images)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        parts.append((np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64)))
    (train_x, train_y), (test_x, test_y) = parts
    return Arrays(train_x, train_y, test_x, test_y, tuple(classes))


def _classes(train: Path) -> list[str]:
    if not train.is_dir():
        raise DataError(
            f"{train} is not a folder (expected train/CLASS/*.png and test/CLASS/*.png)"
        )
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{train} holds no class folders (expected train/CLASS/*.png)")
    return classes


def _array(value: Any, what: str) -> np.ndarray:
    """A numpy array of a loader's output (a tensor is turned into one)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without torch here
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise DataError(f"{what} is a {type(value).__name__}, not an array or tensor")
    return value


def problems(arrays: Arrays) -> list[str]:
    """What does not fit the contract, one line each ([] when the data is fine)."""
    out: list[str] = []
    for part in ("train", "test"):
        x, y = getattr(arrays, f"{part}_x"), getattr(arrays, f"{part}_y")
        if x.ndim not in (2, 4):
            out.append(
                f"{part}_x has shape {list(x.shape)}; expected [N, C, H, W] or [N, features]"
            )
        elif not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            out.append(f"{part}_x is {x.dtype}; expected float or uint8")
        elif np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            out.append(f"{part}_x holds NaN or infinite values")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            out.append(
                f"{part}_y is {y.dtype} of shape {list(y.shape)}; expected integer labels [N]"
            )
        elif len(y) and y.min() < 0:
            out.append(f"{part}_y holds {int(y.min())}; labels are integers from 0")
        if len(x) != len(y):
            out.append(f"{part}_x has {len(x)} rows but {part}_y {len(y)}")
        if len(x) == 0:
            out.append(f"{part}_x is empty")
    if out:
        return out
    if arrays.train_x.shape[1:] != arrays.test_x.shape[1:]:
        out.append(
            f"train_x rows are {list(arrays.train_x.shape[1:])} but test_x rows "
            f"{list(arrays.test_x.shape[1:])}"
        )
    classes = int(arrays.train_y.max()) + 1
    if classes < 2:
        out.append(f"train_y holds {classes} class; at least 2 are needed")
    if int(arrays.test_y.max()) >= classes:
        out.append(f"test_y holds label {int(arrays.test_y.max())}, which train_y never has")
    return out
