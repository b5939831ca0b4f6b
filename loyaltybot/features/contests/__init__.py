"""Contests (SPEC §10.3): bets on an outcome, settled exactly from the pool (parimutuel)."""
