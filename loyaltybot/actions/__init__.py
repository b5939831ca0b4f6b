"""What channel-point rewards and shop items both do once they are paid for (SPEC §6, §10.1).

A reward redeemed and an item bought end in the same actions: a chat line, a title, a
wait in the moderators' queue, a POST to a local service, a Discord message. Two features
need them and a feature never imports another, so they live here, in the core:

- ``text``: templates (``{user}``, ``{input}``, ``{reward}``, ``{balance}``) and safe chat lines;
- ``titles``: the viewer titles table (``!points`` shows the latest);
- ``delivery``: the slow work run after the commit (``db.jobs``): chat lines and Discord
  messages, with retries; and the I/O of a forward, which each feature wraps in its own
  job kind because what a failed forward means (a refund) is the feature's;
- ``queue``: what the dashboard's approval queue lists and decides, whatever waits in it.
"""
