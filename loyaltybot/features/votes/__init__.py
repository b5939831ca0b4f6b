"""Votes: the tally of the ``vote`` reward action, ``!votes`` and the dashboard's votes page.

Votes are cast by redeeming a channel-point reward whose action is ``vote`` (the rewards
feature records each in the channel's ``votes`` table, in the redemption's transaction);
this feature reads, shows and resets the tally.
"""
