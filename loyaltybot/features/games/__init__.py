"""Games (SPEC §10.4): gamble, slots, duel and heist, every roll from the OS and recorded."""
