"""Earning: viewers earn points for watching and chatting, per channel interval (SPEC §4).

``presence`` (who is here, in memory), ``rules`` (the schedule and rates), ``service``
(one interval loop per channel, the chatter list, the tick), ``feature`` (stream state
from EventSub, start and stop).
"""
