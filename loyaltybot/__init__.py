"""loyaltybot: a self-hosted Twitch loyalty-points daemon."""

__version__ = "0.1.0"
