"""Event bonuses: points for follows, subscriptions, gifted subs, cheers and raids (SPEC §4).

``rules`` decides who gets what from the event and the settings; ``service`` credits it in
the notification's transaction; ``feature`` registers the EventSub handlers.
"""
