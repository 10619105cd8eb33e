"""hpo's service: search-space validation, the Ray Tune runner, MLflow tracking and the CLI.
The only package that imports ray and mlflow.

Grouped by layer, lowest first: core, space, store, analysis, cluster, run, report, cli. A
module imports its own layer and those below, never one above (tests/test_layers.py)."""
