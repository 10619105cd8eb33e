"""`hpo report`: the plots, a small document model rendered as Markdown and HTML, the report's
sections (sections), the report folder hpo guards (folder), and the files written from a sweep's
trials (write)."""
