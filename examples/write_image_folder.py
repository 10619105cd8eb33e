"""Write a folder of PNG images in torchvision's ImageFolder layout, from Fashion-MNIST:

    examples/fashion_png/train/<class>/<n>.png   (--train images per class)
    examples/fashion_png/test/<class>/<n>.png    (--test images per class)

It stands for your own folder of images: hpo reads any such folder with `dataset: {folder:
PATH}`. The images come from the Fashion-MNIST files hpo's setup installed (`make data`).

    .venv/bin/python examples/write_image_folder.py [--train 300] [--test 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from models.config import DataConfig
from models.data import read_raw

HERE = Path(__file__).resolve().parent


def write(out: Path, per_class_train: int, per_class_test: int) -> int:
    raw = read_raw(DataConfig("fashion_mnist"), test=True)
    assert raw.test_images is not None and raw.test_labels is not None
    written = 0
    parts = (
        ("train", raw.train_images, raw.train_labels, per_class_train),
        ("test", raw.test_images, raw.test_labels, per_class_test),
    )
    for part, images, labels, per_class in parts:
        for label, name in enumerate(raw.classes):
            folder = out / part / name.replace("/", "-").replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            for n, index in enumerate((labels == label).nonzero()[0][:per_class]):
                Image.fromarray(images[index, 0]).save(folder / f"{n:04d}.png")
                written += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--train", type=int, default=300, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--out", type=Path, default=HERE / "fashion_png")
    args = parser.parse_args()
    count = write(args.out, args.train, args.test)
    print(f"wrote {count} PNG images under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
