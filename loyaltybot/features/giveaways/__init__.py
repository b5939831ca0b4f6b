"""Giveaways (SPEC §10.2): tickets weighted by luck, a committed seed, a draw anyone can check."""
