"""The winning model into MLflow: logged in its own trial's run (torch.export's pt2 format, so
loading it runs no pickled code), registered under the experiment's name as a new version,
and given the alias `best`. A store without a registry (a plain `file:` folder) gets the
logged model only, and says so (docs/architecture.md, "The winning model")."""

from __future__ import annotations

from typing import Any

from tune.core.text import fmt_config
from tune.deploy.winner import Winner
from tune.store.registered import ALIAS, Registered
from tune.store.runs import find_trial_run


def has_registry(tracking_uri: str) -> bool:
    """A plain folder store (file:, or a path) has no model registry; a database or a
    server has one."""
    return not (tracking_uri.startswith("file:") or "://" not in tracking_uri)


def register(
    winner: Winner, module: Any, input_shape: tuple[int, ...], num_classes: int
) -> Registered:
    """Log `module` in the winner's trial run, and register it (a new version under the
    experiment's name, alias `best` moved to it, tagged with what it scored)."""
    import mlflow
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.tracking import MlflowClient
    from mlflow.types import Schema, TensorSpec

    from models.export import example_input

    uri = winner.record.tracking_uri
    name = winner.record.name
    client = MlflowClient(uri)
    run_id = _trial_run(client, winner)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *input_shape))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, num_classes))]),
    )
    registry = has_registry(uri)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(
            module,
            name="model",
            signature=signature,
            input_example=example_input(input_shape).numpy(),
            serialization_format="pt2",
            # The flavor's pinned torch: MLflow's default infers the requirements by loading
            # the model in a second process, 6 CPU-s a confirm for the same answer.
            pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
            registered_model_name=name if registry else None,
        )
    if not registry:
        return Registered(name, run_id, info.model_uri, None)
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, ALIAS, version)
    for key, value in version_tags(winner, run_id).items():
        client.set_model_version_tag(name, version, key, value)
    return Registered(name, run_id, info.model_uri, version)


def version_tags(winner: Winner, run_id: str) -> dict[str, str]:
    """What a registered version says of itself: the configuration, the test accuracy over the
    seeds (mean and 95% CI) and its own, and the runs it came from."""
    tags = {
        "hpo.config": fmt_config(winner.config),
        "hpo.trial_id": winner.trial_id,
        "hpo.run_id": run_id,
        "hpo.sweep_run_id": str(winner.record.parent_run_id),
        f"hpo.validation_{winner.record.metric}": f"{winner.metric:.6g}",
        "hpo.confirmed": "true" if winner.confirmed is not None else "false",
    }
    if winner.test_accuracy is not None:
        tags["hpo.test_accuracy"] = f"{winner.test_accuracy:.6g}"
    if (summary := winner.test_summary()) is not None:
        mean, low, high = summary
        tags["hpo.test_accuracy_mean"] = f"{mean:.6g}"
        if low is not None and high is not None:
            tags["hpo.test_accuracy_ci95"] = f"[{low:.6g}, {high:.6g}]"
    if winner.confirmed is not None and winner.parent_run_id is not None:
        tags["hpo.confirm_run_id"] = winner.parent_run_id
    return tags


def _trial_run(client: Any, winner: Winner) -> str:
    """The MLflow run of the winner's trial, under its parent run."""
    parent = str(winner.parent_run_id)
    experiment_id = client.get_run(parent).info.experiment_id
    found = find_trial_run(client, experiment_id, parent, winner.trial_id)
    if found is None:
        raise LookupError(f"no MLflow run of trial {winner.trial_id} under run {parent}")
    return found


def describe(registered: Registered, winner: Winner) -> list[str]:
    """The console's lines after confirm logged the model."""
    name = winner.record.name
    if registered.version is None:
        return [
            f"hpo: model logged in run {registered.run_id} ({registered.model_uri}); not "
            f"registered: {winner.record.tracking_uri} is a file store, which has no model "
            "registry (use sqlite:///mlflow.db or an MLflow server)"
        ]
    return [
        f"hpo: model registered: {name} version {registered.version}, alias "
        f"'{ALIAS}' ({registered.alias_uri}); trial {winner.trial_id}",
        f"  as files: hpo export {name} --out DIR",
    ]
