"""Shop (SPEC §10.1): items bought with points, with stock, limits and cooldowns."""
