"""The points: the core's single door to balances.

What lives here: amounts and their rules (``amounts``), typed domain errors (``errors``),
who a viewer is (``viewers``, ``first_sight``, and ``known``: who the database knows, as
numbers), every balance change and the audit (``ledger``), points held in escrow for
open rounds (``escrow``), ranks kept in memory (``standings``), the async ``Bank`` every
other part uses, and import/export of balances (``exchange``, ``importers``).

What may not: chat, HTTP, Twitch or any feature. Nothing outside this package runs SQL
on balances or reaches the store behind the bank.
"""
