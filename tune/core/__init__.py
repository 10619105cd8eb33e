"""The foundation every other layer uses; imports nothing else of hpo.

errors (bad input: one line, exit 2), states (trial states), metrics (what a trial reports),
files (bounded, in-folder reads; atomic writes), deadline (a check bounded in wall time),
signals (SIGINT/SIGTERM), trust (the key that seals a folder this machine started), text
(values, durations and columns for people)."""
