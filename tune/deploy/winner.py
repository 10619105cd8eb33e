"""Which trained model a sweep hands over, and that model as one module that takes raw inputs.

After `hpo confirm`: the recommended configuration's confirm trial (one per seed) with the
best validation metric at its last epoch, whose weights are that last epoch's, the model that
was tested. Never chosen by test. Before confirm: the sweep's best trial, with the checkpoint
Ray kept of it (its best epoch), never tested (docs/architecture.md, "The winning model").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tune.analysis import Confirmation, Confirmed, leaderboard, summarize
from tune.core.errors import InputError, Problem
from tune.core.files import inside
from tune.report.confirmation import load_confirmation
from tune.store import checkpoints, records, saved_state, storage
from tune.store.checkpoints import CHECKPOINT_FILE
from tune.store.records import CANDIDATE_KEY, ExperimentRecord
from tune.store.trials import Trial, load_trials


@dataclass(frozen=True)
class Winner:
    """The trained model to hand over, and what is known of it."""

    experiment: Path  # the sweep's folder
    record: ExperimentRecord  # the sweep's
    trial_id: str  # in the confirm run when confirmed, else in the sweep
    config: dict[str, Any]  # the hyperparameters (the spec's search keys)
    checkpoint: Path  # the trainer's checkpoint file the weights come from
    epoch: int  # the epoch those weights are from
    metric: float  # the sweep's validation metric at that epoch
    test_accuracy: float | None  # this model's, on the held-out test set (confirmed only)
    confirmed: Confirmed | None  # the recommended configuration over every seed
    parent_run_id: str | None  # the MLflow parent run its trial's run is under

    @property
    def summary_line(self) -> str:
        """How it was chosen, in one line (the model card's first)."""
        if self.confirmed is None:
            return (
                "NOT CONFIRMED: the sweep's best trial by validation "
                f"{self.record.metric}; run `hpo confirm {self.record.name}` to test it"
            )
        seeds = len(self.confirmed.metric)
        return (
            f"Confirmed: the recommended configuration of `hpo confirm` ({seeds} seeds); of "
            f"its seeds, the model with the best validation {self.record.metric}"
        )

    def test_summary(self) -> tuple[float, float | None, float | None] | None:
        """Mean test accuracy over the confirmed seeds, and its 95% CI (None: unconfirmed)."""
        if self.confirmed is None:
            return None
        s = summarize(self.confirmed.test_accuracy)
        return s.mean, s.ci_low, s.ci_high


def pick(experiment: Path) -> Winner:
    """The model to hand over from a sweep's folder: its confirm run's, once that finished a
    seed of the recommended configuration; else the sweep's best trial."""
    return pick_from(experiment, load_confirmation(experiment))


def pick_from(experiment: Path, confirmation: Confirmation | None) -> Winner:
    """pick, with the confirm run's results read already (None: no confirm run)."""
    record = records.load(experiment)
    if confirmation is not None and confirmation.winner is not None:
        return _confirmed(experiment, record, confirmation.winner, confirmation.run_id)
    return _unconfirmed(experiment, record)


def _confirmed(
    experiment: Path, record: ExperimentRecord, winner: Confirmed, run_id: str | None
) -> Winner:
    folder = records.confirm_dir(experiment)
    confirm_record, trials = load_trials(folder)
    seeds = [
        t
        for t in trials
        if int(t.config.get(CANDIDATE_KEY, -1)) == winner.rank
        and t.last("test_accuracy") is not None
    ]
    sign = -1.0 if record.mode == "max" else 1.0
    best = min(seeds, key=lambda t: (sign * (t.last(record.metric) or 0.0), t.trial_id))
    return Winner(
        experiment=experiment,
        record=record,
        trial_id=best.trial_id,
        config=dict(winner.config),
        checkpoint=_checkpoints(folder, best.trial_id)[-1],  # the last epoch's: tested
        epoch=best.epochs,
        metric=best.last(record.metric) or 0.0,
        test_accuracy=best.last("test_accuracy"),
        confirmed=winner,
        parent_run_id=run_id or confirm_record.parent_run_id,
    )


def _unconfirmed(experiment: Path, record: ExperimentRecord) -> Winner:
    _, trials = load_trials(experiment)
    board = leaderboard(trials, record.metric, record.mode)
    if not board:
        raise InputError(
            str(experiment),
            [Problem("", f"no trial reported {record.metric}", "run or resume the sweep first")],
        )
    best: Trial = board[0]
    epoch, checkpoint = best_kept(experiment, best, record.metric, record.mode)
    return Winner(
        experiment=experiment,
        record=record,
        trial_id=best.trial_id,
        config={k: v for k, v in best.config.items() if k in record.spec.search},
        checkpoint=checkpoint,
        epoch=epoch,
        metric=best.at_epoch(record.metric, epoch) or best.best(record.metric, record.mode) or 0.0,
        test_accuracy=None,
        confirmed=None,
        parent_run_id=record.parent_run_id,
    )


def best_kept(experiment: Path, trial: Trial, metric: str, mode: str) -> tuple[int, Path]:
    """(epoch, checkpoint file) of the best epoch among the checkpoints Ray kept of a sweep's
    trial: Ray keeps the latest and the best epoch's, and the latest may be worse."""
    sign = -1.0 if mode == "max" else 1.0

    def rank(kept: tuple[int, Path]) -> tuple[float, int]:
        value = trial.at_epoch(metric, kept[0])
        return (math.inf if value is None else sign * value), -kept[0]

    return min(((_saved_epoch(c), c) for c in _checkpoints(experiment, trial.trial_id)), key=rank)


def _checkpoints(experiment: Path, trial_id: str) -> list[Path]:
    """The trainer's checkpoint files Ray kept of a trial, oldest first, in the trial's folder
    (inside the experiment: a folder someone sent may name any path), each sound by its seal."""
    trial = next((t for t in saved_state.load(experiment) if t.trial_id == trial_id), None)
    folder = inside(experiment, Path(trial.path).name) if trial and trial.path else None
    if folder is not None:
        storage.pull(experiment, checkpoints_of=folder.name)  # a bucket's mirror has none
    kept = sorted(folder.glob("checkpoint_*")) if folder is not None else []
    if not kept:
        raise InputError(
            str(experiment),
            [Problem("", f"trial {trial_id} has no checkpoint", "a trial that ran an epoch")],
        )
    for one in kept:
        try:
            checkpoints.check(one)
        except checkpoints.CheckpointError as e:
            raise InputError(str(one), [Problem("", str(e))]) from None
    return [one / CHECKPOINT_FILE for one in kept]


def _saved_epoch(checkpoint: Path) -> int:
    """The epoch a trainer's checkpoint was saved after (weights_only: data, never code)."""
    import torch

    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"])


def module(winner: Winner, data_dir: str | None = None) -> tuple[Any, tuple[int, ...], Any]:
    """The winner as one torch module (normalization, then the trained network, eval mode),
    its input shape, and the data it was trained on (models.data.RawData: the class names).
    Reads the data once, for the statistics the trials normalized it with."""
    from models.data import read_raw, trials_normalization
    from models.dataset_files import find_data_dir
    from models.export import trained
    from models.factory import BUILTIN_MODEL, build_model, parse_ref
    from tune.space.hyperparams import model_kwargs

    spec = winner.record.spec
    cfg = spec.dataset.config(spec.seed, data_dir)
    if spec.dataset.builtin:
        root = find_data_dir(spec.dataset.name, spec.dataset.root, data_dir)
        cfg = replace(cfg, root=str(root))
    raw = read_raw(cfg)
    mean, std = trials_normalization(raw, cfg)
    model = spec.model
    kwargs = model_kwargs(winner.config, None if model.factory == BUILTIN_MODEL else model.params)
    build = functools.partial(
        build_model,
        parse_ref(model.factory),
        model.code.search_dir if model.code else None,
        raw.input_shape,
        raw.num_classes,
        kwargs,
    )
    return trained(build, winner.checkpoint, mean, std), raw.input_shape, raw
