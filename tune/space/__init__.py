"""The search space: a YAML file read safely, its distributions and hyperparameter rules, its
sections read into the validated `SweepSpec` every command starts from, and the rules between
its keys."""
