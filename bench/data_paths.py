"""How the data reaches a trial on a fresh worker: through Ray's object store (what hpo does),
or read from the node's own copy of the files (the per-node cache the alternative would fill).

Both run side by side in one local Ray, each in a fresh worker process (max_calls=1), A B A B,
and time what a trial pays before its first batch: getting the data and turning it into the
float tensors of the train/validation split. Memory: the worker's peak RSS, and what the object
store holds. Run alone on the machine:

    .venv/bin/python bench/data_paths.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import ray

from harness import verdict
from models.data import DataConfig, RawData, datasets_from, load_datasets, read_raw


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@ray.remote(num_cpus=1, max_calls=1)
def from_object_store(raw: RawData, cfg: DataConfig) -> tuple[float, float]:
    # Ray has already fetched `raw` when the task starts; that fetch is timed by the caller.
    start = time.perf_counter()
    datasets_from(raw, cfg)
    return time.perf_counter() - start, _peak_rss_mb()


@ray.remote(num_cpus=1, max_calls=1)
def from_files(cfg: DataConfig) -> tuple[float, float]:
    start = time.perf_counter()
    load_datasets(cfg)
    return time.perf_counter() - start, _peak_rss_mb()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat: a check")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    ray.init(address="local", include_dashboard=False, num_cpus=1)
    cfg = DataConfig()
    start = time.perf_counter()
    raw = read_raw(cfg)
    read_s = time.perf_counter() - start
    ref = ray.put(raw)
    size = (raw.train_images.nbytes + raw.train_labels.nbytes) / 2**20
    runs: dict[str, list[tuple[float, float, float]]] = {"object store": [], "files": []}
    for _ in range(args.repeats):
        for name, task in (
            ("object store", lambda: from_object_store.remote(ref, cfg)),
            ("files", lambda: from_files.remote(cfg)),
        ):
            begin = time.perf_counter()
            own, rss = ray.get(task())
            # Wall time includes the worker's start, the same for both; `own` is the part
            # that differs.
            runs[name].append((time.perf_counter() - begin, own, rss))
    print(
        f"driver reads and parses the IDX files once: {read_s:.2f} s; object store: {size:.0f} MB"
    )
    print(f"{'path':<14} {'wall s':>7} {'data s':>7} {'min':>6} {'max':>6} {'peak RSS MB':>12}")
    for name, values in runs.items():
        own = [o for _, o, _ in values]
        print(
            f"{name:<14} {statistics.median(w for w, _, _ in values):>7.2f} "
            f"{statistics.median(own):>7.2f} {min(own):>6.2f} {max(own):>6.2f} "
            f"{max(r for _, _, r in values):>12.0f}"
        )
    ratio = statistics.median(o for _, o, _ in runs["files"]) / statistics.median(
        o for _, o, _ in runs["object store"]
    )
    print("ratio: files / object store, seconds from a fresh worker to tensors")
    ok = verdict("data_paths", ratio, 1.0, higher_is_better=True)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
