"""The daemon's Prometheus metrics: one registry, built by the composition root.

Each part receives the ``Metrics`` object and bumps the counters that concern it (chat
replies, earning ticks, points, webhook notifications); ``/metrics`` renders the
registry. A private ``CollectorRegistry`` instead of prometheus-client's global one keeps
tests and two daemons in one process from counting into each other.

Label values are bounded on purpose: channels come from config.toml, HTTP routes are
route templates (``/c/{channel}/leaderboard``), never raw paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST

# (label values, current value) pairs, read when /metrics is scraped
Reading = Callable[[], Iterable[tuple[Sequence[str], float]]]

# Dashboard pages should take milliseconds; the buckets resolve that range finely.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class Metrics:
    """Counters and gauges other parts increment; ``render()`` is the /metrics body."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry()
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        self.chat_replies_sent = Counter(
            "loyaltybot_chat_replies_sent",
            "Chat replies sent to Twitch.",
            ["channel"],
            registry=r,
        )
        self.chat_replies_dropped = Counter(
            "loyaltybot_chat_replies_dropped",
            "Chat replies not sent, by reason (too_late = could not leave within 30 s).",
            ["channel", "reason"],
            registry=r,
        )
        self.chat_connected = Gauge(
            "loyaltybot_chat_connected", "1 while the chat connection is up.", registry=r
        )
        self.earning_ticks = Counter(
            "loyaltybot_earning_ticks",
            "Earning intervals credited.",
            ["channel"],
            registry=r,
        )
        self.viewers_present = Gauge(
            "loyaltybot_viewers_present",
            "Viewers present in the last credited interval.",
            ["channel"],
            registry=r,
        )
        self.points_credited = Counter(
            "loyaltybot_points_credited",
            "Points credited, by source (tick, bonus, reward, command, dashboard, ...).",
            ["channel", "source"],
            registry=r,
        )
        self.webhook_notifications = Counter(
            "loyaltybot_eventsub_notifications",
            "EventSub webhook messages received, by subscription type and outcome.",
            ["type", "outcome"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "loyaltybot_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def add_counter_source(
        self, name: str, documentation: str, labelnames: Sequence[str], read: Reading
    ) -> None:
        """Expose totals a part already keeps (e.g. ``OutboxCounters``), read at scrape
        time, as a counter: ``read()`` yields (label values, running total) pairs, e.g.
        ``lambda: totals.items()``."""
        self.registry.register(_Source(name, documentation, labelnames, read, counter=True))

    def add_gauge_source(
        self, name: str, documentation: str, labelnames: Sequence[str], read: Reading
    ) -> None:
        """Like ``add_counter_source``, for values that go up and down (queue lengths)."""
        self.registry.register(_Source(name, documentation, labelnames, read, counter=False))

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        body: bytes = generate_latest(self.registry)
        return body


class _Source(Collector):
    """A metric whose values another part holds; read on every scrape."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        read: Reading,
        *,
        counter: bool,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._read = read
        self._counter = counter

    def collect(self) -> Iterator[Metric]:
        family: CounterMetricFamily | GaugeMetricFamily
        if self._counter:
            family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        else:
            family = GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in self._read():
            family.add_metric(list(labels), value)
        yield family
