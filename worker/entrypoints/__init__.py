"""Entrypoints: CLI, worker agents, sandbox."""
