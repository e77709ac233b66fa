"""Composition of the bus adapters: picks Service Bus or the local bus from BusSettings."""

from __future__ import annotations

from shared.bus.deadletters import DeadLetterOps, LocalDeadLetters, ServiceBusDeadLetters
from shared.bus.port import BusPublisher
from shared.bus.topology import Topology, load_topology
from shared.settings import BusSettings


def build_publisher(settings: BusSettings, *, topology: Topology | None = None) -> BusPublisher:
    """The publisher for `settings.backend` ('local': LocalBus on settings.local_path)."""
    if settings.backend == "local":
        from shared.bus.local import LocalBus

        return LocalBus(settings.local_path, topology or load_topology())
    from shared.bus.servicebus import ServiceBusPublisher

    return ServiceBusPublisher(settings)


def build_dead_letters(settings: BusSettings, *, topology: Topology | None = None) -> DeadLetterOps:
    """Dead-letter operations for `settings.backend` (syncctl dlq)."""
    if settings.backend == "local":
        from shared.bus.local import LocalBus

        bus = LocalBus(settings.local_path, topology or load_topology())
        return LocalDeadLetters(bus, owns_bus=True)
    return ServiceBusDeadLetters(settings)
