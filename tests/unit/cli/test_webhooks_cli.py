"""`syncctl webhooks register --brightpearl` against the Brightpearl simulator: idempotent, dry run."""

import pytest
from typer.testing import CliRunner

from sandbox.brightpearl import SimulatorServer
from syncctl.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def bp_server():
    with SimulatorServer(seed_contacts=0, seed_products=0, seed_orders=0) as server:
        yield server


@pytest.fixture
def env(bp_server, monkeypatch):
    monkeypatch.setenv("BRIGHTPEARL_BASE_URL", bp_server.url)
    monkeypatch.setenv("BRIGHTPEARL_ACCOUNT", bp_server.account)
    monkeypatch.setenv("BRIGHTPEARL_APP_REF", "sandbox-app")
    monkeypatch.setenv("BRIGHTPEARL_ACCOUNT_TOKEN", "sandbox-account-token")
    bp_server.simulator.reset()
    return bp_server


def register(*extra):
    return runner.invoke(app, ["webhooks", "register", "--brightpearl", "--ingress-url",
                               "http://127.0.0.1:7071/api", "--function-key", "k3y-for-tests", *extra])


def listed(server):
    import httpx

    response = httpx.get(f"{server.url}/public-api/{server.account}/integration-service/webhook",
                         headers={"brightpearl-app-ref": "sandbox-app",
                                  "brightpearl-account-token": "sandbox-account-token"})
    return response.json().get("response", []) if response.status_code == 200 else []


def test_register_creates_then_keeps_and_dry_run_changes_nothing(env):
    dry = register("--dry-run")
    assert dry.exit_code == 0, dry.output
    actions = {line.split("│")[2].strip() for line in dry.output.splitlines() if "│ brightpearl" in line}
    assert actions == {"create"} and "dry run" in dry.output
    assert listed(env) == []

    first = register()
    assert first.exit_code == 0, first.output
    created = listed(env)
    assert created and all("/api/webhooks/brightpearl" in h["uriTemplate"] for h in created)
    assert all(h["idSetAccepted"] and h["qualityOfService"] == 1 for h in created)
    assert "k3y-for-tests" not in first.output  # the key is masked

    second = register()
    assert second.exit_code == 0, second.output
    actions = [line.split("│")[2].strip() for line in second.output.splitlines() if "│ brightpearl" in line]
    assert actions and set(actions) == {"keep"}
    assert sorted(h["id"] for h in listed(env)) == sorted(h["id"] for h in created)


def test_missing_choice_or_key_is_a_clear_error(env):
    result = runner.invoke(app, ["webhooks", "register", "--ingress-url", "http://127.0.0.1:7071/api",
                                 "--function-key", "x"])
    assert result.exit_code != 0 and "--brightpearl" in result.output
