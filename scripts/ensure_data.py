"""Make sure Fashion-MNIST's four original IDX files are where hpo looks (models/data.py).

In order: already present (an explicit HPO_DATA_DIR, Debian's folder, our download cache);
Debian's package `dataset-fashion-mnist` where apt works; torchvision's downloader; else a clear
message naming HPO_DATA_DIR. Re-running it on a set-up machine does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from models.dataset_files import DataNotFoundError, download, find_data_dir

DEBIAN_PACKAGE = {"fashion_mnist": "dataset-fashion-mnist"}


def found(name: str) -> bool:
    try:
        print(f"{name}: {find_data_dir(name, data_dir=os.environ.get('HPO_DATA_DIR'))}")
        return True
    except DataNotFoundError:
        return False


def apt_install(package: str) -> bool:
    if shutil.which("apt-get") is None:
        return False
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return False
    print(f"installing Debian's {package} with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        if subprocess.run(sudo + cmd, env=env, check=False).returncode != 0:
            return False
    return True


def main(name: str = "fashion_mnist") -> int:
    if found(name):
        return 0
    if name in DEBIAN_PACKAGE and apt_install(DEBIAN_PACKAGE[name]) and found(name):
        return 0
    print(f"downloading {name} with torchvision ...", flush=True)
    try:
        download(name)
    except Exception as e:  # no network, a proxy, a moved mirror: say what to do instead
        print(f"torchvision could not download {name}: {e}", file=sys.stderr)
    if found(name):
        return 0
    print(
        f"error: {name} is not on this machine and could not be fetched. Put its four IDX .gz "
        "files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,"
        " t10k-labels-idx1-ubyte.gz) in a folder and set HPO_DATA_DIR to it.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
