#!/usr/bin/env bash
# The GPU check, for a machine with one NVIDIA GPU: the same short sweep twice, with
# `resources: {cpu: 1, gpu: 0.25}` (four trials share the GPU, each held to a quarter of its
# memory) and on the CPU only. The last lines: the most trials seen running at once, samples/s
# per trial and in total, and the GPU/CPU ratio of the totals. Sets everything up itself
# (make setup: the virtualenv and the data); without CUDA it says so and exits 0.
#
#     bash bench/gpu_check.sh            # about 3 minutes after setup on an H100-class GPU
set -euo pipefail
cd "$(dirname "$0")/.."
make setup >/dev/null
PY=.venv/bin/python
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device here; nothing to check (exit 0)"
    exit 0
fi
"$PY" -c "import torch; print('gpu_check:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
space() {  # NAME GPU
    cat >"$work/$1.yaml" <<EOF
name: $1
dataset: {train_steps: 300, eval_steps: 10}
search:
  dropout: {grid: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}
  filters: 32
  units: 128
  batch_size: 256
  epochs: 3
search_algorithm: grid
scheduler: none
resources: {cpu: 1, gpu: $2}
EOF
}
space gpu_check_gpu 0.25
space gpu_check_cpu 0
for name in gpu_check_gpu gpu_check_cpu; do
    .venv/bin/hpo sweep "$work/$name.yaml" --storage "$work/runs" \
        --tracking-uri "sqlite:///$work/mlflow.db" >"$work/$name.log" 2>&1 ||
        { tail -20 "$work/$name.log"; exit 1; }
done

"$PY" - "$work/runs" <<'EOF'
import json, statistics, sys
from pathlib import Path

def measure(folder: Path) -> tuple[int, float, float]:
    """Most trials running at once, median samples/s of a trial, total samples/s."""
    spans, rates, samples = [], [], 0.0
    for path in folder.glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        start = min(r["timestamp"] - r["time_this_iter_s"] for r in rows)
        spans.append((start, max(r["timestamp"] for r in rows)))
        rates += [r["samples_per_s"] for r in rows]
        samples += sum(r["samples_per_s"] * r["train_seconds"] for r in rows)
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return most, statistics.median(rates), samples / wall

runs = Path(sys.argv[1])
gpu, cpu = measure(runs / "gpu_check_gpu"), measure(runs / "gpu_check_cpu")
for label, (most, per_trial, total) in (("gpu 0.25", gpu), ("cpu", cpu)):
    print(f"{label:>8}: at most {most} trials at once, {per_trial:,.0f} samples/s per trial, "
          f"{total:,.0f} samples/s in total")
print(f"gpu_check: ratio={gpu[2] / cpu[2]:.1f} (GPU total / CPU total samples/s)")
EOF
