"""The Dataverse change-tracking pollers against the simulator over HTTP: two changes of a row
within one second (one modifiedon) are two notices, not one the bus would drop as a copy."""

# ruff: noqa: F811 - pytest fixtures imported from simfixtures are parameters here
from __future__ import annotations

from datetime import UTC, datetime

from shared.dataverse.client import DataverseClient
from shared.events import Envelope
from shared.flows.pollers import OrderChangePoller
from tests.contract.dataverse.simfixtures import (  # noqa: F401 - client, dataverse_server, sim: fixtures
    MemoryCursorStore,
    client,
    dataverse_server,
    sim,
)
from tests.contract.test_dataverse_orders import order_body, shop, write_in  # noqa: F401 - shop: fixture


def test_two_changes_in_one_second_are_two_notices_with_their_own_message_ids(
    client: DataverseClient, shop
) -> None:
    sent: list[Envelope] = []
    poller = OrderChangePoller(
        client=client,
        cursors=MemoryCursorStore(),  # type: ignore[arg-type]
        publish=sent.extend,
        clock=lambda: datetime.now(UTC),
        source="/dataverse/test",
    )
    poller.poll()  # records the delta links
    order = client.create("salesorders", order_body(shop))
    poller.poll()
    client.update("salesorders", order, {"name": "Renamed once"})
    poller.poll()
    client.update("salesorders", order, {"name": "Renamed twice"})
    poller.poll()

    about_order = [e for e in sent if e.notice.entity == "salesorder"]
    assert len(about_order) == 3
    assert len({e.to_message().message_id for e in about_order}) == 3
