"""Levels (SPEC §10.5): names for watch time, shown by ``!level``, ``!points`` and the
dashboard's viewers page."""
