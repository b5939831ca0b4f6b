"""The database: one writer connection, one reader, numbered migrations, and ``jobs``,
the transactional outbox of slow work.

What lives here: how SQLite is opened and written (``Store.write(fn(tx))`` in one
``BEGIN IMMEDIATE``; ``desk``: a burst of requests committed in groups), the migrations,
the jobs table and its worker. What may not: any
domain rule (balances are ``points``'), chat, HTTP, or a feature.
"""

from loyaltybot.db.connection import Store, Tx, integrity_of, open_store, savepoint

__all__ = ["Store", "Tx", "integrity_of", "open_store", "savepoint"]
