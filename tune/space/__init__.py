"""The search space: a YAML file read safely, its distributions and hyperparameter rules, and
the validated `SweepSpec` every command starts from."""
