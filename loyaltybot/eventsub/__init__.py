"""EventSub, the edge: Twitch's events, verified and processed once, handed to features.

What lives here: the message model and webhook signature checks (``events``), the two
transports, the webhook route (``webhook``) and EventSub over WebSocket (``websocket``,
its frames parsed in ``frames``), once-only processing and dispatch to the handlers
features register (``dispatch``), which subscription each event class is (``kinds``), the
webhook subscriptions (``subscriptions``) and what the dashboard shows (``status``). A
transport only turns what Twitch sends into ``Notification``s for the one dispatcher.
What may not: any feature, and any decision about points.
"""
