"""`hpo export`: the winning model as files plain PyTorch uses, in a folder of their own.

model.pt2 (torch.export: `torch.export.load(path).module()`, no hpo code), model_card.md (what
it is and how it was chosen), labels.json (the class names) and best_config.yaml. A folder
that holds files hpo did not write is refused, as `hpo report --out` refuses one; a folder hpo
exported into before has only its own files replaced (MARKER lists them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tune.analysis import summarize
from tune.core.errors import InputError, Problem
from tune.core.files import write_atomic
from tune.core.text import fmt_config
from tune.deploy.winner import Winner, module
from tune.report.folder import check_real_folder
from tune.report.write import best_config
from tune.store import records
from tune.store import registered as registered_model
from tune.store.registered import Registered

MODEL_FILE = "model.pt2"
CARD_FILE = "model_card.md"
LABELS_FILE = "labels.json"
CONFIG_FILE = "best_config.yaml"
MARKER = ".hpo-export.json"
# model.pt2 is written here first, then renamed (whole, or the old one); its name ends in .pt2,
# or torch warns. Left by a kill mid-write, it is hpo's too.
PARTIAL = f".tmp-{MODEL_FILE}"
WRITTEN = (MODEL_FILE, CARD_FILE, LABELS_FILE, CONFIG_FILE, MARKER, PARTIAL)


@dataclass(frozen=True)
class Exported:
    folder: Path
    files: list[Path]
    winner: Winner


def check_folder(out: Path) -> Path:
    """`out` as hpo may write into it: new, empty, or holding only what an export wrote; a
    real folder, not a link. InputError (exit 2) before anything is written otherwise."""
    folder = out.absolute()
    source = f"--out {out}"
    check_real_folder(folder, source)
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.name not in WRITTEN)
        linked = [p.name for p in folder.iterdir() if p.is_symlink()]
        if others or linked:
            listed = ", ".join((others or linked)[:3])
            raise InputError(
                source,
                [
                    Problem(
                        "",
                        f"holds files hpo did not write: {listed}",
                        "a new or empty folder, or one hpo exported into before",
                    )
                ],
            )
    return folder


def export(winner: Winner, out: Path, data_dir: str | None = None) -> Exported:
    """Write the winner's files into `out` (checked first: check_folder)."""
    from models.export import save_exported

    folder = check_folder(out)
    net, input_shape, raw = module(winner, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / MODEL_FILE
    tmp = folder / PARTIAL
    save_exported(net, input_shape, tmp)
    tmp.replace(model_path)  # whole, or the old one
    labels = list(raw.classes) or [str(i) for i in range(raw.num_classes)]
    registered = registered_model.load(records.confirm_dir(winner.experiment))
    note = winner.summary_line
    files = [
        model_path,
        write_atomic(folder / LABELS_FILE, json.dumps(labels, indent=1) + "\n"),
        write_atomic(folder / CONFIG_FILE, best_config(winner.record, winner.config, note)),
        write_atomic(
            folder / CARD_FILE,
            model_card(winner, input_shape, labels, registered if winner.confirmed else None),
        ),
    ]
    write_atomic(folder / MARKER, json.dumps([p.name for p in files], indent=1))
    return Exported(folder, files, winner)


def model_card(
    winner: Winner,
    input_shape: tuple[int, ...],
    labels: list[str],
    registered: Registered | None,
) -> str:
    """The model card: what it is, the data and split, the configuration, its figures with
    CIs, how it was chosen, how to load it, and its limits."""
    spec = winner.record.spec
    data = spec.dataset
    source = data.config(spec.seed).label
    test = _test_lines(winner)
    lines = [
        f"# Model card: {winner.record.name}",
        "",
        f"**{winner.summary_line}.**",
        "",
        "## What it is",
        f"- Model factory: `{spec.model.factory}`; input `[N, {', '.join(map(str, input_shape))}]`"
        " float32 scaled to [0, 1] (uint8 / 255), output logits `[N, "
        f"{len(labels)}]`. The dataset's normalization is inside the model.",
        f"- Weights: trial `{winner.trial_id}`, epoch {winner.epoch}.",
        "",
        "## Data",
        f"- Source: {source}; {data.validation_fraction:.0%} of the training set held out for "
        f"validation (split with seed {spec.seed}); the test set is the source's own, "
        "never used to choose.",
        f"- Classes: {', '.join(labels)}.",
        "",
        "## Configuration",
        f"- {fmt_config(winner.config)}",
        "",
        "## Figures",
        f"- Validation {winner.record.metric} of this model: {winner.metric:.4f}.",
        *test,
        "",
        "## How it was chosen",
        *_chosen(winner),
        "",
        "## Load it",
        "```python",
        "import torch",
        f'model = torch.export.load("{MODEL_FILE}").module()',
        "logits = model(images.float() / 255)  # images: uint8 [N, "
        f"{', '.join(map(str, input_shape))}]",
        "```",
        *_registry_lines(registered),
        "",
        "## Known limits",
        *_limits(winner, source),
    ]
    return "\n".join(lines) + "\n"


def _limits(winner: Winner, source: str) -> list[str]:
    bf16 = winner.config.get("precision") == "bf16"
    seeds = (
        "the spread over the confirm seeds is above."
        if winner.confirmed
        else "this figure is one seed's, not confirmed."
    )
    return [
        f"- Tuned and tested on one dataset ({source}); other data may need another configuration.",
        *(["- Trained with bfloat16 autocast; this float32 model may score slightly otherwise."]
          if bf16 else []),
        f"- Seeds: a configuration's score moves with the seed; {seeds}",
    ]  # fmt: skip


def _test_lines(winner: Winner) -> list[str]:
    summary = winner.test_summary()
    if summary is None or winner.test_accuracy is None:
        return ["- Test accuracy: not measured (the test set is read only by `hpo confirm`)."]
    mean, low, high = summary
    ci = f", 95% CI [{low:.4f}, {high:.4f}]" if low is not None and high is not None else ""
    seeds = len(winner.confirmed.test_accuracy) if winner.confirmed else 0
    val = summarize(winner.confirmed.metric if winner.confirmed else [])
    val_ci = f", 95% CI [{val.ci_low:.4f}, {val.ci_high:.4f}]" if val.ci_low is not None else ""
    return [
        f"- Validation {winner.record.metric} of the configuration over {seeds} seeds: mean "
        f"{val.mean:.4f}{val_ci}.",
        f"- Test accuracy of this model: {winner.test_accuracy:.4f}.",
        f"- Test accuracy of the configuration over {seeds} seeds: mean {mean:.4f}{ci}.",
    ]


def _chosen(winner: Winner) -> list[str]:
    metric = winner.record.metric
    if winner.confirmed is None:
        return [
            f"- The sweep's trial with the best validation {metric}, at the epoch Ray kept its "
            "checkpoint. One seed: part of its lead may be luck. `hpo confirm` retrains the top "
            "configurations with fresh seeds and tests them."
        ]
    return [
        f"- `hpo confirm` retrained the sweep's top configurations with fresh seeds and ranked "
        f"them by mean validation {metric}; this is the recommended one.",
        f"- Of its seeds, the model with the best validation {metric} at its last epoch.",
        "- The test set was read once per model, after training, and never used to choose.",
    ]


def _registry_lines(registered: Registered | None) -> list[str]:
    if registered is None:
        return []
    if registered.version is None:
        return ["", f"MLflow: logged as `{registered.model_uri}` (the store has no registry)."]
    return [
        "",
        f"MLflow: version {registered.version} of registered model `{registered.name}`; "
        f'`mlflow.pytorch.load_model("{registered.alias_uri}")` loads it.',
    ]


def describe(exported: Exported) -> list[str]:
    """The console's lines after an export."""
    lines = [f"hpo: exported '{exported.winner.record.name}' to {exported.folder}"]
    if exported.winner.confirmed is None:
        lines.append(f"  {exported.winner.summary_line}")
    for path in exported.files:
        lines.append(f"  {path.name}")
    return lines
