"""`hpo export`'s folder rule and model card, without Ray: what it writes into, and what the
card says of a confirmed and an unconfirmed model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune.analysis import Confirmed
from tune.core.errors import InputError
from tune.deploy.export import WRITTEN, check_folder, model_card
from tune.deploy.winner import Winner
from tune.space.spec import SweepSpec
from tune.store.records import new_record
from tune.store.registered import Registered


def winner(confirmed: bool) -> Winner:
    spec = SweepSpec(name="study", source="study.yaml", search={"dropout": 0.3})
    record = new_record(spec, "sqlite:///m.db")
    return Winner(
        experiment=Path("/runs/study"),
        record=record,
        trial_id="abc_00001",
        config={"dropout": 0.3},
        checkpoint=Path("/runs/study/t/checkpoint_000001/trainer.pt"),
        epoch=3,
        metric=0.91,
        test_accuracy=0.9 if confirmed else None,
        confirmed=Confirmed(
            rank=1,
            trial_id="abc_00001",
            config={"dropout": 0.3},
            sweep_value=0.92,
            metric=[0.91, 0.89],
            test_accuracy=[0.9, 0.88],
            test_loss=[0.3, 0.32],
        )
        if confirmed
        else None,
        parent_run_id="confirm-run",
    )


def test_export_writes_into_a_new_empty_or_earlier_export_folder_only(tmp_path: Path) -> None:
    assert check_folder(tmp_path / "new") == (tmp_path / "new").absolute()
    (tmp_path / "empty").mkdir()
    check_folder(tmp_path / "empty")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in WRITTEN:
        (earlier / name).write_text("")
    check_folder(earlier)
    (earlier / "mine.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds files hpo did not write: mine\.txt"):
        check_folder(earlier)
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(InputError, match="is a link"):
        check_folder(tmp_path / "link")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is not a folder"):
        check_folder(tmp_path / "file")


def test_the_card_of_an_unconfirmed_model_says_so_first() -> None:
    card = model_card(winner(False), (1, 28, 28), ["a", "b"], None)
    first = card.splitlines()[2]
    assert first.startswith("**NOT CONFIRMED: the sweep's best trial by validation val_accuracy")
    assert "Test accuracy: not measured" in card
    assert "Model factory: `models.cnn:build`" in card
    assert 'torch.export.load("model.pt2").module()' in card


def test_the_card_of_a_confirmed_model_gives_its_figures_and_where_it_is_registered() -> None:
    registered = Registered("study", "run-1", "models:/m-1", "4")
    card = model_card(winner(True), (1, 28, 28), ["a", "b"], registered)
    assert card.splitlines()[2].startswith("**Confirmed")
    assert "Test accuracy of this model: 0.9000." in card
    assert "over 2 seeds: mean 0.8900, 95% CI [" in card
    assert "Validation val_accuracy of the configuration over 2 seeds: mean 0.9000" in card
    assert (
        'version 4 of registered model `study`; `mlflow.pytorch.load_model("models:/study@best")`'
        in card
    )
    assert "dropout=0.3" in card and "Classes: a, b." in card
