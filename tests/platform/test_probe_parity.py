"""The local host loads exactly what the real Python worker loads, and refuses the rest alike.

Each probe app in probes/ declares one function; the table says what the worker does with it,
verified by running the real worker (azure-functions-runtime in the cached 3.13 venv) on it, and
the local host must give the same verdict with the same kind of message.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.host.config import HostConfigError
from sandbox.host.index import import_app_module, index_functions
from tests.platform.worker_env import WorkerEnv

PROBES_DIR = Path(__file__).resolve().parent / "probes"
SHARED_MODULE = "probe_triggers"


def not_declared(names: str) -> str:
    return r"parameters are declared in Python but not in the function definition .*\{" + names


def mismatch(annotation: str) -> str:
    return r"not match .*annotation \"?" + annotation


@dataclass(frozen=True)
class Probe:
    loads: bool
    message: str = ""  # regex both refusals match
    local_message: str = ""  # regex for the local host when its wording differs from the worker's


PROBES: dict[str, Probe] = {
    # binding annotations: a class or a typing generic, never list[...] or a union
    "batch_typing_list": Probe(True),
    "batch_classic_list": Probe(True),
    "batch_builtin_list": Probe(False, r"binding msgs has invalid non-type annotation list\["),
    "batch_builtin_list_future": Probe(False, r"binding msgs has invalid non-type annotation list\["),
    "trigger_union": Probe(
        False, r"binding msg has invalid non-type annotation .*ServiceBusReceivedMessage \| None"
    ),
    # the worker crashes in the SDK-type check on a Union; the local host names the annotation
    "trigger_optional": Probe(
        False,
        r"issubclass\(\) arg 1 must be a class",
        r"binding msg has invalid non-type annotation typing\.Optional",
    ),
    "trigger_unannotated": Probe(True),
    "trigger_out": Probe(
        False, r"binding msg is declared to have the \"in\" direction .* azure\.functions\.Out"
    ),
    "trigger_wrong_class": Probe(False, mismatch("HttpRequest")),
    "trigger_plain_sdk_class": Probe(False, mismatch("ServiceBusReceivedMessage")),
    "batch_plain_sdk_class": Probe(False, mismatch("List")),
    "timer_request": Probe(True),
    "timer_str": Probe(True),
    # the settlement parameter: the one unbound parameter, annotated with the settlement type
    "settlement_other_name": Probe(True),
    "settlement_default": Probe(True),  # a default does not matter to the worker
    "settlement_unannotated": Probe(False, not_declared("'message_actions'")),
    "settlement_wrong_type": Probe(False, not_declared("'message_actions'")),
    "settlement_twice": Probe(False, not_declared("'m")),
    "unbound_default": Probe(False, not_declared("'extra'")),
    # context: bound by the name `context`, never by type
    "context_named": Probe(True),
    "context_unannotated": Probe(True),
    "context_other_name": Probe(False, not_declared("'ctx'")),
    "context_wrong_type": Probe(
        False, r"the \"context\" parameter is expected to be of type azure\.functions\.Context"
    ),
    # return annotations of a function with a $return binding: a class the output accepts
    "return_response": Probe(True),
    "return_str": Probe(True),
    "return_int_topic": Probe(True),  # no $return binding: not checked
    "return_int": Probe(False, r"Python return annotation \"int\" does not match binding type \"http\""),
    "return_none_http": Probe(
        False, r"Python return annotation \"NoneType\" does not match binding type \"http\""
    ),
    "return_union": Probe(False, r"has invalid non-type return annotation .*HttpResponse \| None"),
    "return_optional": Probe(False, r"has invalid non-type return annotation typing\.Optional\["),
}

# The worker loads a settlement parameter on any trigger; the local host serves message actions
# to Service Bus triggers only, and says so at start-up instead of failing at the first request.
LOCAL_HOST_LIMITS = {
    "settlement_on_http": r"settlement parameter 'message_actions' on a httpTrigger function"
}


def _probe_names() -> set[str]:
    return {p.stem for p in PROBES_DIR.glob("*.py")} - {SHARED_MODULE}


@pytest.fixture
def probes_importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The probes import their shared module by bare name, as in the worker (app dir on sys.path)."""
    monkeypatch.syspath_prepend(str(PROBES_DIR))
    try:
        yield
    finally:
        for name in [*_probe_names(), SHARED_MODULE]:
            sys.modules.pop(name, None)


def _local_verdict(name: str) -> tuple[bool, str]:
    try:
        index_functions(import_app_module(name), {})
    except HostConfigError as exc:
        return False, str(exc)
    return True, ""


@pytest.fixture(scope="module")
def worker_verdicts(worker: WorkerEnv) -> dict[str, tuple[bool, str]]:
    """Each probe through the real worker's init request (one fresh worker process each)."""
    verdicts = {}
    for name in sorted(_probe_names()):
        init = worker.index(PROBES_DIR, {}, script_file=f"{name}.py")["init"]
        verdicts[name] = (init["status"] == "Success", init["message"])
    return verdicts


def test_every_probe_app_is_in_the_table():
    assert _probe_names() == set(PROBES) | set(LOCAL_HOST_LIMITS)


@pytest.mark.parametrize("name", sorted(PROBES))
@pytest.mark.usefixtures("probes_importable")
def test_the_local_host_gives_the_workers_verdict(name: str):
    probe = PROBES[name]
    loads, message = _local_verdict(name)
    assert loads == probe.loads, message
    if not probe.loads:
        assert re.search(probe.local_message or probe.message, message), message


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(PROBES))
@pytest.mark.usefixtures("probes_importable")
def test_the_real_worker_and_the_local_host_agree(name: str, worker_verdicts: dict[str, tuple[bool, str]]):
    probe = PROBES[name]
    worker_loads, worker_message = worker_verdicts[name]
    local_loads, local_message = _local_verdict(name)
    assert (worker_loads, local_loads) == (probe.loads, probe.loads), (worker_message, local_message)
    if not probe.loads:
        assert re.search(probe.message, worker_message), worker_message
        assert re.search(probe.local_message or probe.message, local_message), local_message


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(LOCAL_HOST_LIMITS))
@pytest.mark.usefixtures("probes_importable")
def test_what_the_local_host_cannot_serve_is_refused_by_name(
    name: str, worker_verdicts: dict[str, tuple[bool, str]]
):
    assert worker_verdicts[name] == (True, "")
    loads, message = _local_verdict(name)
    assert not loads
    assert re.search(LOCAL_HOST_LIMITS[name], message), message
