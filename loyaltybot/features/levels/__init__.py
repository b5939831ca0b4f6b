"""Levels (SPEC §10.5): named ranks reached by accumulated watch time."""
