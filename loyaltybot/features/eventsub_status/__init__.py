"""The EventSub page: how channel points and stream events reach each channel (SPEC §6.1)."""
