"""``python -m loyaltybot``: the same program as the ``loyaltybot`` script."""

from loyaltybot.daemon import main

if __name__ == "__main__":
    raise SystemExit(main())
