"""The SQLite store: one writer connection, one reader, numbered migrations."""

from loyaltybot.store.connection import Store, Tx, open_store

__all__ = ["Store", "Tx", "open_store"]
