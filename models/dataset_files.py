"""Where a dataset's original files are: the folders looked in, in order, and the four IDX
files each must hold. No torch: checking a search space (tune/space/checks.py) finds the data
without loading a deep-learning library."""

from __future__ import annotations

from pathlib import Path

# Where each dataset's four IDX .gz files may already be, in the order they are tried after an
# explicit root and the user's data folder ($HPO_DATA_DIR, read by the CLI). Debian's `dataset-fashion-mnist` installs the first one.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
# torchvision's downloader keeps the raw files under <root>/<ClassName>/raw.
TORCHVISION_CLASS = {"fashion_mnist": "FashionMNIST", "mnist": "MNIST"}
DEFAULT_DOWNLOAD_ROOT = Path.home() / ".cache" / "hpo" / "data"

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# Per-dataset pixel mean and std over the training images (after scaling to [0, 1]).
STATS = {"fashion_mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}
DATASETS = tuple(STATS)
# Class names by label, as the datasets publish them.
CLASSES = {
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "mnist": tuple(str(d) for d in range(10)),
}  # fmt: skip


class DataNotFoundError(FileNotFoundError):
    """The dataset's IDX files are in none of the places we look."""


def candidate_dirs(name: str, root: str | None = None, data_dir: str | None = None) -> list[Path]:
    """Every folder that may hold `name`'s files, most specific first. An explicit root is the
    only place looked at: a user who names a folder means that folder. `data_dir` is the user's
    own data folder ($HPO_DATA_DIR, read once by the CLI, never here: a trial on another node
    must look where the driver was told to, not where its own environment says)."""

    def under(base: str) -> list[Path]:
        # A user may point at the files themselves or at a folder of datasets.
        p = Path(base).expanduser().absolute()
        return [p, p / name.replace("_", "-"), p / TORCHVISION_CLASS[name] / "raw"]

    if root:
        return under(root)
    dirs = under(data_dir) if data_dir else []
    dirs += list(SYSTEM_DIRS[name])
    dirs.append(DEFAULT_DOWNLOAD_ROOT / TORCHVISION_CLASS[name] / "raw")
    return dirs


def find_data_dir(name: str, root: str | None = None, data_dir: str | None = None) -> Path:
    """The first folder holding all four files, or DataNotFoundError saying where we looked."""
    if name not in STATS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    tried = candidate_dirs(name, root, data_dir)
    for d in tried:
        if all((d / f).is_file() for f in FILES.values()):
            return d
    looked = ", ".join(str(d) for d in tried)
    fetch = (
        "run `make data` (Debian's dataset-fashion-mnist, else torchvision's download)"
        if name == "fashion_mnist"
        else f"run `.venv/bin/python scripts/ensure_data.py {name}` (torchvision's download)"
    )
    raise DataNotFoundError(
        f"{name} IDX files ({FILES['train_images']} and three more) not found; looked in "
        f"{looked}. To fix: {fetch}, or set HPO_DATA_DIR to a folder holding them"
    )


def download(name: str, dest: Path = DEFAULT_DOWNLOAD_ROOT) -> Path:
    """Fetch the original files with torchvision's downloader (needs the internet)."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION_CLASS[name])
    cls(root=str(dest), train=True, download=True)
    cls(root=str(dest), train=False, download=True)
    return dest / TORCHVISION_CLASS[name] / "raw"
