"""One trial, built as every trial is built: the settings a sweep's trials share, the worker's
copy of the data, and the trainer for a config. No Ray here: `hpo plan` builds trials too, to
time a few of their steps (tune/forecast/measure.py); tune/run/trainable.py runs them on Ray."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import torch

from models.data import DataConfig, Datasets, RawData, Split, datasets_from, test_split_from
from models.dataset_files import DataNotFoundError, find_data_dir
from models.device import limit_memory, pick_device
from models.factory import BUILTIN_MODEL, Param, build_model, parse_ref
from models.trainer import Trainer
from tune.core.errors import InputError, Problem
from tune.run.process import RunOptions
from tune.space.hyperparams import model_kwargs, train_config
from tune.space.spec import SweepSpec

SEED_KEY = "seed"  # in a confirm trial's config: the trainer's seed for this repeat


@dataclass(frozen=True)
class Fault:
    """Tests only: each trial raises once, just before it trains `epoch`, leaving a marker file
    named after the trial in `marker_dir` so that its retry goes through. The tests use it to
    check that a failed trial resumes from its last checkpoint."""

    epoch: int
    marker_dir: str


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of one sweep shares."""

    data: DataConfig
    train_steps: int | None
    eval_steps: int | None
    seed: int
    threads: int  # the CPUs a trial owns, as torch threads
    device: str  # "cpu" for CPU-only trials; "auto" = the GPU Ray gave the trial
    gpu_share: float = 0.0  # resources.gpu: the part of its GPU a trial may fill
    # `hpo confirm`: after the last epoch, evaluate once on the held-out test set.
    test_at_end: bool = False
    fault: Fault | None = None  # tests only; never set by the CLI
    # The model factory ("module:function"), its hyperparameters (() = the built-in CNN's) and
    # the folder its module is imported from first (on a cluster it comes in the runtime_env).
    model: str = BUILTIN_MODEL
    model_params: tuple[Param, ...] = ()
    model_dir: str | None = None


def trial_settings(spec: SweepSpec, options: RunOptions) -> TrialSettings:
    """What every trial shares. The data is found here, by the driver; the trials get it from
    Ray's object store (tune/run/sweep.py: adapter), never from a folder of their own."""
    data = spec.dataset.config(spec.seed)
    if spec.dataset.builtin:
        try:
            root = find_data_dir(spec.dataset.name, spec.dataset.root, options.data_dir)
        except DataNotFoundError as e:  # e.g. a resume on another machine than the sweep
            raise InputError(spec.source, [Problem("dataset", str(e))]) from None
        data = replace(data, root=str(root))
    model = spec.model
    return TrialSettings(
        data=data,
        train_steps=spec.dataset.train_steps,
        eval_steps=spec.dataset.eval_steps,
        seed=spec.seed,
        threads=max(1, int(spec.resources.cpu)),
        # A trial that asked for no GPU stays on the CPU even where one is visible to it.
        device="cpu" if spec.resources.gpu == 0 else "auto",
        gpu_share=spec.resources.gpu,
        model=model.factory,
        model_params=model.params,
        model_dir=model.code.search_dir if model.code else None,
    )


# The data reaches trials through Ray's object store, not the file system: the driver reads the
# files once (read_raw) and `tune.with_parameters` puts them there, so a node that has no copy
# of the dataset, or of this project, still trains (docs/architecture.md, "Data"). A worker
# process turns them into tensors once: with actor reuse, its later trials skip that and the
# memory of a second copy.
_DATA: dict[tuple[DataConfig, str], Datasets] = {}
_TEST: dict[DataConfig, Split] = {}


def datasets(cfg: DataConfig, raw: RawData, device: torch.device) -> Datasets:
    """The worker's one copy, on the trial's device: on a GPU it stays there for the next trial
    the worker runs, instead of being copied again for each."""
    key = (cfg, str(device))
    if key not in _DATA:
        _DATA.clear()  # a worker serves one sweep; never hold two datasets
        made = datasets_from(raw, cfg)
        _DATA[key] = Datasets(made.train.to(device), made.validation.to(device))
    return _DATA[key]


def held_out_test_set(cfg: DataConfig, raw: RawData) -> Split:
    """The held-out test set, used only by `hpo confirm` trials (and made once per worker)."""
    if cfg not in _TEST:
        _TEST.clear()
        _TEST[cfg] = test_split_from(raw, cfg)
    return _TEST[cfg]


def build_trainer(config: dict[str, Any], settings: TrialSettings, data: RawData) -> Trainer:
    """The trainer of the trial with `config`, on its device, with the worker's copy of the
    data. A config with a `seed` (set by `hpo confirm`, which retrains one configuration with
    several seeds) overrides the sweep's."""
    seed = int(config.get(SEED_KEY, settings.seed))
    device = pick_device(settings.device)
    limit_memory(device, settings.gpu_share)
    model = functools.partial(
        build_model,
        parse_ref(settings.model),
        settings.model_dir,
        data.input_shape,
        data.num_classes,
        model_kwargs(config, None if settings.model == BUILTIN_MODEL else settings.model_params),
    )
    return Trainer(
        model,
        train_config(
            config,
            train_steps=settings.train_steps,
            eval_steps=settings.eval_steps,
            seed=seed,
            threads=settings.threads,
            device=settings.device,
        ),
        datasets(settings.data, data, device),
    )
