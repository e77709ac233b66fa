"""Many change sets in one `$batch` (DataverseClient.execute_change_sets), against the simulator:
what a flow writing one atomic group per record (an invoice with its lines) sends as ONE request
for a whole batch of records, instead of one `$batch` per record."""

from __future__ import annotations

from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from shared.dataverse.models import BatchOperation
from shared.sync.fakes import FakeDataverse


def _counted(client: DataverseClient) -> list[str]:
    sent: list[str] = []
    original = client.request

    def request(method: str, path: str, **kwargs: object) -> object:
        sent.append(f"{method} {path}")
        return original(method, path, **kwargs)  # type: ignore[arg-type]

    client.request = request  # type: ignore[method-assign]
    return sent


def test_three_change_sets_go_in_one_request_and_a_failing_one_rolls_back_alone(
    client: DataverseClient,
) -> None:
    sent = _counted(client)
    groups = [
        [
            BatchOperation("POST", "accounts", {"name": "First", "bpi_brightpearlid": "G-1"}),
            BatchOperation("POST", "accounts", {"name": "First bis", "bpi_brightpearlid": "G-1b"}),
        ],
        [
            BatchOperation("POST", "accounts", {"name": "Rolled back", "bpi_brightpearlid": "G-2"}),
            BatchOperation("POST", "accounts", {"name": "Bad", "accountcategorycode": 99}),
        ],
        [],
        [BatchOperation("POST", "accounts", {"name": "Third", "bpi_brightpearlid": "G-3"})],
    ]

    answers = client.execute_change_sets(groups)

    assert sent == ["POST $batch"]  # one request for every group
    assert [[r.ok for r in group] for group in answers] == [[True, True], [False, False], [], [True]]
    assert answers[1][0].error is not None and answers[1][0].error is answers[1][1].error
    assert answers[0][0].entity_id and answers[3][0].entity_id
    made = {r["bpi_brightpearlid"] for r in client.query("accounts", select=["bpi_brightpearlid"])}
    assert {"G-1", "G-1b", "G-3"} <= made and "G-2" not in made  # the failing set alone rolled back
    assert client.count("accounts", odata.eq("name", "Rolled back")) == 0


def test_the_fake_counts_one_call_and_reports_a_failed_group_on_each_operation() -> None:
    fake = FakeDataverse()
    a1 = "00000000-0000-0000-0000-0000000000a1"
    fake.tables["accounts"][a1] = {"accountid": a1, "name": "A"}
    answers = fake.execute_change_sets(
        [
            [BatchOperation("PATCH", f"accounts({a1})", {"name": "B"})],
            [
                BatchOperation("PATCH", f"accounts({a1})", {"name": "C"}),
                BatchOperation("PATCH", "accounts(00000000-0000-0000-0000-000000000009)", {"name": "D"}),
            ],
        ]
    )
    assert fake.calls == ["execute_change_sets"]
    assert [[r.ok for r in group] for group in answers] == [[True], [False, False]]
