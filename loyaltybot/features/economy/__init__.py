"""The economy page (SPEC §10.7): the channel's daily earning, giving, spending, winning and
losing over 30 days, the points in circulation, the games' house edge and the rewards'
redemptions."""
