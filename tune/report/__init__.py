"""`hpo report`: the plots, a small document model rendered as Markdown and HTML, and the
report written from a sweep's trials (write)."""
