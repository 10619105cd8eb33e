"""What an experiment leaves behind and how it is read back: the storage (a folder or S3), the
record (hpo_sweep.json), Ray's saved state read as plain JSON, checkpoints and their seals, the
snapshot backup, the tracking URI's forms, and the trials and rows that status and report show."""
