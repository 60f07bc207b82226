"""The fault suite (issue #14): `./dev chaos [NAME]` or `python -m tests.chaos [NAME]`; its short form runs in
`./dev test` (test_chaos_short.py). Everything runs on a PostgreSQL, Kafka and sandbox of its own."""
