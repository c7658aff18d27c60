"""The store: SQLModel tables on SQLite (default) or PostgreSQL."""

from omni_journey.store.db import create_store_engine, open_store, upgrade

__all__ = ["create_store_engine", "open_store", "upgrade"]
