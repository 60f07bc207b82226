"""Versioned SQL migrations, applied in file-name order by worker.adapters.migrations."""
