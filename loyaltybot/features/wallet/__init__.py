"""The wallet: what a viewer and a moderator do with points, in chat and on the dashboard.

Chat (``commands``): ``!points``, ``!watchtime``, ``!leaderboard``, ``!give``, and the
moderators' ``!addpoints``, ``!removepoints``, ``!setpoints``. Pages (``views``): viewers,
a viewer's history and adjustments, the leaderboard, the transaction log, and the public
leaderboard with its JSON API. Balances themselves are the core's (``points``).
"""
