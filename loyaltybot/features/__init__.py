"""Features: each one package that plugs into the core and the edges (DESIGN.md, "The house").

A feature keeps its decisions as pure functions in ``rules.py`` (no I/O, testable alone),
its transactions in ``service.py``, its chat commands in ``commands.py``, its pages in
``views.py`` and the object the daemon registers in ``feature.py``. A feature may use the
core (points, db, twitch, config); it never imports another feature: a need two features
share moves down into the core.
"""
