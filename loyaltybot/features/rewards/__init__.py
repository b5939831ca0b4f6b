"""Channel-point rewards: redemptions turned into configured actions (SPEC §6).

``rules`` (which reward, safe text), ``service`` (the redemption transaction and the
rewards' SQL), ``delivery`` (chat lines, forwards and Twitch status updates, run as jobs
after the commit), ``channel_points`` (Twitch's rewards API), ``cli`` (``loyaltybot
rewards sync``), ``views`` (the redemption queue) and ``feature``.
"""
