"""The data and the model, checked before anything starts (rule: one line each, exit 2).

A built-in dataset is only looked for (its files, as today: torch is not loaded). A user's data
is read, its test part too, and checked against the contract (models/sources.py); then the
model is built once from the search space's constants and the factory's defaults and run on a
batch, and its output shape is checked. The user's code runs inside `user_code.quiet()`: what it
prints or raises is one line here, and all of it with --verbose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.config import max_conv_layers
from models.dataset_files import DataNotFoundError, find_data_dir
from models.factory import CodeError, build_model, parse_ref
from tune.core.errors import Problem, show
from tune.space import hyperparams, user_code
from tune.space.distributions import Distribution
from tune.space.spec import SweepSpec

BUILTIN_SHAPE, BUILTIN_CLASSES = (1, 28, 28), 10  # both built-in datasets
BATCH = 4  # rows the model is tried on


def data_checks(spec: SweepSpec, data_dir: str | None) -> list[Problem]:
    """The driver's machine must hold the data: it reads it for every trial."""
    if spec.dataset.builtin:
        problems = _builtin_data(spec, data_dir)
        if problems or spec.model.builtin:
            return problems  # its shape: shape_checks, always run
        return _model_check(spec, None)
    from models.data import read_raw
    from models.sources import DataError

    try:
        with user_code.quiet():
            raw = read_raw(spec.dataset.config(spec.seed, data_dir), test=True)
    except (DataError, CodeError) as e:
        return [Problem(spec.dataset.source_key, f"{_shown(spec)}: {e}")]
    n_val = round(len(raw.train_labels) * spec.dataset.validation_fraction)
    if not 0 < n_val < len(raw.train_labels):
        return [
            Problem(
                "dataset.validation_fraction",
                f"{spec.dataset.validation_fraction:g} of {len(raw.train_labels)} training rows "
                "leaves an empty split",
                "a fraction that keeps rows on both sides",
            )
        ]
    return _shape_checks(spec, raw.input_shape) or _model_check(spec, raw)


def shape_checks(spec: SweepSpec) -> list[Problem]:
    """What a built-in dataset's known shape rules out, without reading it (a user's data is
    held to its shape once read, in data_checks)."""
    return _shape_checks(spec, BUILTIN_SHAPE) if spec.dataset.builtin else []


def _shown(spec: SweepSpec) -> str:
    """The source as the message names it: a path whole, however long."""
    d = spec.dataset
    return show(d.factory) if d.factory else repr(d.npz or d.folder)


def _builtin_data(spec: SweepSpec, data_dir: str | None) -> list[Problem]:
    if spec.dataset.root is not None and not Path(spec.dataset.root).expanduser().is_dir():
        return [
            Problem(
                "dataset.root",
                f"folder {spec.dataset.root!r} does not exist",
                "a folder with the IDX .gz files, or null",
            )
        ]
    try:
        find_data_dir(spec.dataset.name, spec.dataset.root, data_dir)
    except DataNotFoundError as e:
        return [Problem("dataset", str(e))]
    return []


def _shape_checks(spec: SweepSpec, shape: tuple[int, ...]) -> list[Problem]:
    """What the data's shape rules out: augmentation of rows, and for the built-in CNN
    anything but square images, or more conv blocks than the image side allows."""
    problems = []
    augment = spec.search.get("augment", False)
    if True in hyperparams.possible_values(augment) and len(shape) != 3:
        problems.append(
            Problem(
                "search.augment",
                f"augment crops and flips images; this data is rows of {shape[0]} features",
                "augment: false",
            )
        )
    if not spec.model.builtin:
        return problems
    if len(shape) != 3 or shape[1] != shape[2]:
        square = Problem(
            "model.factory",
            f"the built-in CNN takes square images [C, H, H], not rows of {list(shape)}",
            'your own model: model: {factory: "module:function"}',
        )
        return [*problems, square]
    most = max_conv_layers(shape[1])
    deepest = max(int(v) for v in hyperparams.possible_values(spec.search["conv_layers"]))
    if deepest > most:
        problems.append(
            Problem(
                "search.conv_layers",
                f"{deepest} conv+pool blocks do not fit a {shape[1]}x{shape[2]} image",
                f"at most {most}",
            )
        )
    return problems


def _model_check(spec: SweepSpec, raw: Any) -> list[Problem]:
    """Build the model with the space's constants (else the factory's defaults), run it on a
    batch, and check that it returns logits [N, classes]."""
    import numpy as np
    import torch

    shape, classes = (raw.input_shape, raw.num_classes) if raw else (BUILTIN_SHAPE, BUILTIN_CLASSES)
    x = raw.train_images[:BATCH] if raw is not None else np.zeros((BATCH, *shape), np.uint8)
    batch = torch.from_numpy(np.ascontiguousarray(x)).float()
    params = spec.model.hyperparams()
    values = {
        **hyperparams.defaults(params),
        **{k: v for k, v in spec.search.items() if not isinstance(v, Distribution)},
    }
    kwargs = hyperparams.model_kwargs(values, params)
    ref = parse_ref(spec.model.factory)
    search_dir = spec.model.code.search_dir if spec.model.code else None
    what = f"{spec.model.factory} with {_kwargs(kwargs)}"
    try:
        with user_code.quiet():
            torch.manual_seed(0)
            model = build_model(ref, search_dir, shape, classes, kwargs)
    except Exception as e:
        return [Problem("model.factory", f"{what}: {_failure(e)}")]
    try:
        with user_code.quiet(), torch.no_grad():
            out = model.eval()(batch)
    except Exception as e:
        return [
            Problem(
                "model.factory", f"{what}, run on a batch of {list(batch.shape)}: {_failure(e)}"
            )
        ]
    expected = [len(batch), classes]
    if not isinstance(out, torch.Tensor) or list(out.shape) != expected:
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return [
            Problem(
                "model.factory",
                f"{what} returned {got} for a batch of {list(batch.shape)}",
                f"logits {expected}: [N, num_classes], {classes} classes in the data",
            )
        ]
    return []


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no hyperparameters"


def _failure(e: Exception) -> str:
    if isinstance(e, CodeError):
        return str(e)
    return f"raised {type(e).__name__}: {e}".splitlines()[0]
