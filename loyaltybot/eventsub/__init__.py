"""EventSub, the edge: Twitch's events, verified and processed once, handed to features.

What lives here: the message model and webhook signature checks (``events``), the webhook
route (``webhook``), once-only processing and dispatch to the handlers features register
(``dispatch``), and the webhook subscriptions (``subscriptions``). A transport only turns
what Twitch sends into ``Notification``s; the WebSocket transport (SPEC §6.1) is a second
transport beside the webhook, feeding the same dispatcher. What may not: any feature, and
any decision about points.
"""
