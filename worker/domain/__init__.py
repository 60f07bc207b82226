"""Functional core: pure models and rules, no I/O (no asyncpg, aiokafka, faust or zeep imports)."""
