"""hpo's service: search-space validation, the Ray Tune runner, MLflow tracking and the CLI.
The only package that imports ray and mlflow."""
