"""check_environment: reports missing custom columns, alternate keys and change tracking."""

from __future__ import annotations

from shared.dataverse.environment_check import REQUIREMENTS, Requirement, check_environment


def test_complete_environment_has_no_problems(sim, client):
    assert check_environment(client) == []


def test_missing_pieces_are_named(sim, client):
    sim.admin.call("POST", "schema", {"table": "contact", "drop_column": "bpi_lifetimevalue"})
    sim.admin.call("POST", "schema", {"table": "account", "drop_key": "bpi_account_brightpearlid"})
    sim.admin.call("POST", "schema", {"table": "product", "change_tracking": False})
    problems = check_environment(client, (*REQUIREMENTS, Requirement("bpi_nosuchtable", ("x",))))
    assert {(p.table, p.kind, p.name) for p in problems} == {
        ("contact", "missing_column", "bpi_lifetimevalue"),
        ("account", "missing_key", "bpi_brightpearlid"),
        ("product", "change_tracking_off", "ChangeTrackingEnabled"),
        ("bpi_nosuchtable", "missing_table", "bpi_nosuchtable"),
    }
    assert all(p.fix for p in problems)
