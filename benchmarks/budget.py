"""Scale-out safety (issue 16 item 2): two function hosts, one Brightpearl account, one budget.

Runs TWO local Functions hosts (`python -m sandbox.host`, separate processes, so each has its
own Brightpearl client and budget, as two Azure instances do) on one local bus and one Azurite
state store, against the Brightpearl and Dataverse simulators. N contacts are seeded in
Dataverse and backfilled (`syncctl backfill customers --from dataverse`'s code): both hosts
create them in Brightpearl (an address POST and a contact POST per customer, ten per
multi-message, plus the reads), far more than the cap allows, so the budget decides the pace.

Scaling: the simulator's cap is 20 requests per rolling 6 s window, Brightpearl's rate
(200 per 60 s) with the window and the count both divided by 10: the same request rate, so the
run takes as long as against Brightpearl (about twenty minutes for 10,000 records), but it spans
ten times more windows, each a check of the cap; the hosts' budget is scaled the
same way (window 6 s, leases of 1 request for 0.5 s instead of 10 for 5 s). Two hosts together
ask for about twice that rate (the flows are CPU-bound on two shared cores), so the budget sets
the pace. Notices carry 500 ids (50 in the test), one notice per invocation, so both hosts
take turns (the flow renews the message locks of a long batch) and the contact scans that
match new Dynamics customers read the growing Brightpearl list once per 500.

Measured: the simulator's 503 answers (0 means no throttled request reached Brightpearl, so
none could reach a flow), the most requests admitted in any rolling window (from the
simulator's request log) against the cap, the combined rate per window over the busy part of
the run, dead letters, duplicates. `--no-shared` runs the same with BRIGHTPEARL_SHARED_BUDGET=
false (each host its own budget: the failure the shared budget prevents). A second part times
leases on Azurite: table requests and milliseconds per lease, alone and with two budgets
contending (ETag conflicts).

    .venv/bin/python -m benchmarks.budget [--records 10000] [--window 6] [--no-shared]

Writes benchmarks/results/budget.json. tests/e2e/scale/test_two_hosts.py runs the same harness
with 1,000 records.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.azurite import AzuriteTable  # noqa: E402
from sandbox.brightpearl import SimulatorServer as BrightpearlServer  # noqa: E402
from sandbox.customers_solution import install  # noqa: E402
from sandbox.dataverse import SimulatorConfig as DataverseConfig  # noqa: E402
from sandbox.dataverse import SimulatorServer as DataverseServer  # noqa: E402
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET  # noqa: E402
from sandbox.demo import crm_contact  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DV_TOPIC, TO_BP = "dataverse-changes", "customers-to-brightpearl"
BP_TOPIC, TO_DV = "brightpearl-changes", "customers-to-dataverse"
FLOW = "customers_to_brightpearl"
NEVER = "0 0 0 1 1 *"
HOSTS = 2


@dataclass
class Run:
    """What one two-host backfill did; `as_dict` is the benchmark's JSON."""

    records: int
    shared: bool
    rate_limit: int
    window_seconds: float
    seconds: float
    brightpearl_requests: int
    throttled_503: int
    max_in_any_window: int
    windows: list[int]
    bp_contacts: int
    distinct_emails: int
    dataverse_linked: int
    dead_letters: int
    hosts_ran_flows: list[int]
    host_logs: list[str]
    finished: bool = True

    @property
    def busy_rate_per_window(self) -> float:
        """Combined requests per window over the full windows of the run (first to last request)."""
        full = self.windows[:-1] or self.windows
        return sum(full) / len(full) if full else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "finished": self.finished,
            "hosts": HOSTS,
            "shared_budget": self.shared,
            "cap": f"{self.rate_limit} requests per rolling {self.window_seconds:g} s window "
            f"(= {self.rate_limit * 60 / self.window_seconds:g} per 60 s; Brightpearl: 200 per 60 s; "
            f"window and count both scaled by {self.window_seconds / 60:g})",
            "seconds": round(self.seconds, 1),
            "brightpearl_requests": self.brightpearl_requests,
            "brightpearl_503_answers": self.throttled_503,
            "max_requests_in_any_rolling_window": self.max_in_any_window,
            "combined_requests_per_window_busy_average": round(self.busy_rate_per_window, 1),
            "share_of_cap_busy_average": round(self.busy_rate_per_window / self.rate_limit, 3),
            "requests_per_fixed_window": self.windows,
            "brightpearl_contacts": self.bp_contacts,
            "distinct_emails_in_brightpearl": self.distinct_emails,
            "dataverse_contacts_linked": self.dataverse_linked,
            "dead_letters": self.dead_letters,
            "flow_invocations_per_host": self.hosts_ran_flows,
        }


def person(i: int) -> dict[str, str]:
    return {
        "first": f"Given{i % 97}",
        "last": f"Family-{i}",
        "email": f"scale.{i}@example.org",
        "phone": f"0117 496 {i % 10000:04d}",
        "line1": f"{i} High Street",
        "city": "Bristol",
        "postcode": f"BS{i // 1000 + 1} {i % 1000:03d}X",
    }


def seed_dataverse(dv: DataverseServer, records: int) -> None:
    with httpx.Client(base_url=f"{dv.url}/_sandbox/", timeout=60) as http:

        def one(i: int) -> None:
            body = {"method": "POST", "path": "contacts", "body": crm_contact(person(i))}
            out = http.post("crm", json=body)
            if out.status_code >= 300 or out.json()["status"] >= 300:
                raise RuntimeError(f"seeding Dataverse contact {i} failed: {out.text[:200]}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(records)))


def host_values(
    bp: BrightpearlServer,
    dv: DataverseServer,
    azurite: str,
    work: Path,
    prefix: str,
    *,
    rate_limit: int,
    window: float,
    shared: bool,
    ids_per_notice: int,
) -> dict[str, str]:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values = {k: v for k, v in values.items() if v != ""}
    values.update({k: NEVER for k in values if k.endswith("_SCHEDULE")})  # only the backfill runs
    values.update(
        AzureWebJobsStorage=azurite,
        STATE_TABLE_PREFIX=prefix,
        LOCAL_BUS_PATH=str(work / "bus.sqlite3"),
        BRIGHTPEARL_BASE_URL=bp.url,
        BRIGHTPEARL_ACCOUNT=bp.account,
        BRIGHTPEARL_APP_REF="sandbox-app",
        BRIGHTPEARL_ACCOUNT_TOKEN="sandbox-account-token",
        BRIGHTPEARL_RATE_LIMIT=str(rate_limit),
        BRIGHTPEARL_RATE_WINDOW_SECONDS=str(window),
        BRIGHTPEARL_SHARED_BUDGET="true" if shared else "false",
        # Scaled like the cap: Brightpearl's 10 of 200 per lease of 5 s in a 60 s window.
        BRIGHTPEARL_SHARED_BUDGET_BLOCK=str(max(1, rate_limit // 20)),
        BRIGHTPEARL_SHARED_BUDGET_LEASE_SECONDS=str(round(window / 12, 3)),
        # Notices of ids_per_notice ids, one per invocation, so both hosts take turns.
        CUSTOMERS_IDS_PER_NOTICE=str(ids_per_notice),
        AzureFunctionsJobHost__extensions__serviceBus__maxMessageBatchSize="1",
        AzureFunctionsJobHost__extensions__serviceBus__minMessageBatchSize="1",
        DATAVERSE_URL=dv.url,
        DATAVERSE_TOKEN_URL=dv.token_url,
        DATAVERSE_CLIENT_ID=DEFAULT_CLIENT_ID,
        DATAVERSE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        CUSTOMERS_POLL_INITIAL_LOOKBACK_HOURS="2000",
    )
    return values


@contextmanager
def hosts(values: dict[str, str], work: Path) -> Iterator[list[Path]]:
    """Two `python -m sandbox.host` processes on the settings; yields their log files."""
    settings = work / "host.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    env = {k: v for k, v in os.environ.items() if k not in values}
    procs: list[subprocess.Popen[bytes]] = []
    logs = [work / f"host{n}.log" for n in range(HOSTS)]
    try:
        for log in logs:
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "sandbox.host",
                            "--settings",
                            str(settings),
                            "--port",
                            "0",
                            "--project-root",
                            str(ROOT),
                            "--poll-interval",
                            "0.05",
                            "--grace",
                            "10",
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        while not all("host listening on" in log.read_text(errors="replace") for log in logs):
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    raise RuntimeError(f"host exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the hosts did not start within 120 s")
            time.sleep(0.2)
        yield logs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_two_host_backfill(
    records: int,
    azurite: str,
    work: Path,
    *,
    rate_limit: int = 20,
    window: float = 6.0,
    shared: bool = True,
    ids_per_notice: int = 50,
    timeout: float = 600.0,
) -> Run:
    from shared import runtime
    from shared.bus.local import LocalBus
    from shared.flows.customers_spec import CUSTOMERS
    from shared.settings import load_settings
    from shared.store import StateStore
    from shared.sync import backfill

    prefix = f"s{uuid.uuid4().hex[:10]}"
    with (
        BrightpearlServer(
            seed_contacts=0,
            seed_products=0,
            seed_orders=0,
            rate_limit=rate_limit,
            rate_window_seconds=window,
            contact_webhooks=False,
        ) as bp,
        DataverseServer(DataverseConfig(fractional_retry_after=True)) as dv,
    ):
        install(dv.simulator)
        seed_dataverse(dv, records)
        values = host_values(
            bp,
            dv,
            azurite,
            work,
            prefix,
            rate_limit=rate_limit,
            window=window,
            shared=shared,
            ids_per_notice=ids_per_notice,
        )
        store = StateStore.from_connection_string(azurite, table_prefix=prefix)
        store.ensure_tables()
        bus = LocalBus(work / "bus.sqlite3")
        try:
            with hosts(values, work) as logs:
                bp.simulator.throttle.reset()
                started = time.monotonic()
                with runtime.override(settings=load_settings(values), publisher=bus, state_store=store):
                    backfill.from_runtime(CUSTOMERS, "dataverse").run()  # type: ignore[arg-type]
                finished = _wait_done(bp, bus, records, started + timeout)
                seconds = time.monotonic() - started
                host_logs = [log.read_text(errors="replace") for log in logs]
            run = _collect(bp, dv, bus, records, shared, rate_limit, window, seconds, host_logs)
            run.finished = finished
            return run
        finally:
            bus.close()
            store.drop_tables()
            store.close()


def _wait_done(bp: BrightpearlServer, bus: Any, records: int, deadline: float) -> bool:
    """Until every customer is in Brightpearl and the subscription has nothing left to do;
    False when the deadline passed first (the figures then cover what was done)."""
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        with bp.simulator.state.lock:
            created = len(bp.simulator.state.contacts)
        counts = bus.counts(DV_TOPIC, TO_BP)
        idle = counts.active == 0 and counts.scheduled == 0
        if created >= records and idle:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return True
        elif counts.active == 0 and counts.scheduled == 0 and counts.dead_letter:
            return True  # nothing left to try: the assertions say what went wrong
        else:
            quiet_since = None
        time.sleep(0.25)
    return False


def _collect(
    bp: BrightpearlServer,
    dv: DataverseServer,
    bus: Any,
    records: int,
    shared: bool,
    rate_limit: int,
    window: float,
    seconds: float,
    host_logs: list[str],
) -> Run:
    throttle = bp.simulator.throttle
    with throttle._lock:
        admitted = sorted(t for times in throttle.admitted_log.values() for t in times)
        rejected = throttle.rejected
    windows: list[int] = []
    if admitted:
        first = admitted[0]
        windows = [0] * (int((admitted[-1] - first) // window) + 1)
        for t in admitted:
            windows[int((t - first) // window)] += 1
    with bp.simulator.state.lock:
        contacts = list(bp.simulator.state.contacts.values())
    emails = {
        str(c.get("communication", {}).get("emails", {}).get("PRI", {}).get("email", "")).lower()
        for c in contacts
    }
    with httpx.Client(base_url=f"{dv.url}/_sandbox/", timeout=60) as http:
        rows = http.get("tables/contact").json()["rows"]
    dead = sum(bus.counts(t, s).dead_letter for t, s in ((DV_TOPIC, TO_BP), (BP_TOPIC, TO_DV)))
    return Run(
        records=records,
        shared=shared,
        rate_limit=rate_limit,
        window_seconds=window,
        seconds=seconds,
        brightpearl_requests=len(admitted) + rejected,
        throttled_503=rejected,
        max_in_any_window=throttle.max_in_any_window(),
        windows=windows,
        bp_contacts=len(contacts),
        distinct_emails=len(emails - {""}),
        dataverse_linked=sum(1 for r in rows if r.get("bpi_brightpearlid")),
        dead_letters=dead,
        hosts_ran_flows=[log.count(f"Executed 'Functions.{FLOW}' (Succeeded") for log in host_logs],
        host_logs=host_logs,
    )


# ------------------------------------------------------------------------------ lease cost
class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, response: Any) -> None:
        self.count += 1


def lease_cost(azurite: str, leases: int = 200) -> dict[str, Any]:
    """Table requests and time per lease: one budget alone, then two contending."""
    from azure.data.tables import TableServiceClient

    from shared.brightpearl.shared_budget import TableLeases

    counter = _Counter()
    service = TableServiceClient.from_connection_string(azurite, raw_response_hook=counter)
    table = service.create_table(f"b{uuid.uuid4().hex[:12]}cursors")
    out: dict[str, Any] = {}
    try:
        for contenders in (1, 2):
            pool = f"pool-{contenders}"
            budgets = [
                TableLeases(table, pool, allowed=10**9, window_seconds=60, lease_seconds=5)
                for _ in range(contenders)
            ]
            before, started = counter.count, time.perf_counter()

            def work(leases_: TableLeases, count: int) -> None:
                for _ in range(count):
                    leases_.lease(10)

            threads = [threading.Thread(target=work, args=(b, leases // contenders)) for b in budgets]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            done = leases // contenders * contenders
            out[f"{contenders}_budget{'s' if contenders > 1 else ''}"] = {
                "leases": done,
                "table_requests_per_lease": round((counter.count - before) / done, 2),
                "table_requests_per_brightpearl_request": round((counter.count - before) / done / 10, 3),
                "ms_per_lease": round(elapsed / done * 1000, 2),
                "etag_conflicts": sum(b.conflicts for b in budgets),
            }
    finally:
        service.delete_table(table.table_name)
        service.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=6.0, help="simulated window (Brightpearl: 60)")
    parser.add_argument("--limit", type=int, default=20, help="simulated cap per window (Brightpearl: 200)")
    parser.add_argument(
        "--ids-per-notice",
        type=int,
        default=100,
        help="ids per notice: one invocation each (under the 1 min lock)",
    )
    parser.add_argument("--no-shared", action="store_true", help="each host its own budget")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds; the figures cover what was done"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("budget.json" if not args.no_shared else "budget-not-shared.json")
    with AzuriteTable() as azurite, tempfile.TemporaryDirectory() as tmp:
        report: dict[str, Any] = {
            "benchmark": "two local hosts, one Brightpearl account: combined request rate against "
            "the cap during a Dataverse -> Brightpearl customer backfill; lease cost on Azurite",
            "python": platform.python_version(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "lease_cost_azurite": lease_cost(azurite.connection_string),
        }
        run = run_two_host_backfill(
            args.records,
            azurite.connection_string,
            Path(tmp),
            rate_limit=args.limit,
            window=args.window,
            shared=not args.no_shared,
            ids_per_notice=args.ids_per_notice,
            timeout=args.timeout,
        )
        report["two_host_backfill"] = run.as_dict()
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
