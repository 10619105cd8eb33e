"""Known hyperparameters: defaults from the trainer's own configs, typed configs for a trial."""

from __future__ import annotations

from dataclasses import fields

from models.config import ModelConfig, TrainConfig
from tune.core.errors import Problem
from tune.space import hyperparams
from tune.space.distributions import Distribution


def test_defaults_are_the_trainers_own() -> None:
    defaults = hyperparams.defaults()
    assert set(defaults) == set(hyperparams.RULES)
    for cls in (ModelConfig, TrainConfig):
        for f in fields(cls):
            if f.name in defaults:
                assert defaults[f.name] == f.default, f.name


def test_a_trials_config_becomes_typed_configs() -> None:
    config = {**hyperparams.defaults(), "conv_layers": 3, "dropout": 0, "lr": 1, "epochs": 4}
    model = hyperparams.model_config(config)
    assert model == ModelConfig(conv_layers=3, dropout=0.0)
    assert isinstance(model.dropout, float)
    train = hyperparams.train_config(config, seed=5, threads=1)
    assert train == TrainConfig(lr=1.0, epochs=4, seed=5, threads=1)


def test_grid_values_of_each_kind() -> None:
    assert hyperparams.grid_values(Distribution("randint", (2, 4))) == (2, 3, 4)  # inclusive
    assert hyperparams.grid_values(Distribution("choice", (True, False))) == (True, False)
    assert hyperparams.grid_values(Distribution("uniform", (0.0, 0.5))) is None


def test_values_are_checked_against_their_rule() -> None:
    assert hyperparams.check_value("search.dropout", "dropout", "5e-1") == 0.5
    bad = hyperparams.check_value("search.dropout", "dropout", 1.0)
    assert bad == Problem("search.dropout", "1.0 is not allowed", "a number in [0, 1)")
    # dropout uniform [0, 1) never draws 1, so 1 is a fine open end of the range.
    dist, problems = hyperparams.check_distribution(
        "search.dropout", "dropout", Distribution("uniform", (0.0, 1.0))
    )
    assert dist is not None and problems == []
    _, problems = hyperparams.check_distribution(
        "search.normalization", "normalization", Distribution("uniform", (0.0, 1.0))
    )
    assert "uniform does not fit normalization" in problems[0].message
