"""Thin adapters at the edge: Nmbrs SOAP, PostgreSQL, Kafka."""
