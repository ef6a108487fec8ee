"""Persistence: the engine, ORM models and the repository functions (ORM rows stay in here)."""
