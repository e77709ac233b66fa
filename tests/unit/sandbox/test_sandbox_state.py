"""`syncctl sandbox up` starts from a clean state store: the simulators are seeded anew on every
start, so an earlier run's links (in Azurite's files) and bus would name records that are gone or
ids the new seed gives to other records, and the demo's new customer would be "already linked to
another record" (seen: its order then waited for a customer link that never came)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import up


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(up, "ROOT", tmp_path)
    monkeypatch.setattr(up, "STATE_DIR", tmp_path / ".sandbox")
    (tmp_path / ".sandbox" / "azurite").mkdir(parents=True)
    (tmp_path / ".sandbox" / "azurite" / "__azurite_db_table__.json").write_text("{}")
    (tmp_path / ".sandbox" / "bus.sqlite3").write_text("")
    (tmp_path / ".sandbox" / "bus.sqlite3-wal").write_text("")
    (tmp_path / ".sandbox" / "orders.yaml").write_text("fulfilment: {}")  # the demo's mapping copy
    return tmp_path


def test_an_earlier_runs_tables_and_bus_are_cleared_and_said(tree: Path):
    said: list[str] = []
    cleared = up.clear_state({"LOCAL_BUS_PATH": ".sandbox/bus.sqlite3"}, said.append)
    assert sorted(p.name for p in cleared) == ["azurite", "bus.sqlite3", "bus.sqlite3-wal"]
    assert not (tree / ".sandbox" / "azurite").exists() and not (tree / ".sandbox" / "bus.sqlite3").exists()
    assert (tree / ".sandbox" / "orders.yaml").exists()  # only the state goes
    [line] = said
    assert "starting fresh" in line and ".sandbox/azurite" in line and "--keep-state" in line
    assert up.clear_state({"LOCAL_BUS_PATH": ".sandbox/bus.sqlite3"}, said.append) == []
    assert len(said) == 1  # nothing to clear: nothing said


def test_keep_state_or_a_running_sandbox_leaves_the_files(tree: Path, monkeypatch: pytest.MonkeyPatch):
    settings = {"LOCAL_BUS_PATH": str(tree / ".sandbox" / "bus.sqlite3")}  # the demo's copies go there too
    monkeypatch.setattr(up, "load_local_settings", lambda: (tree / "s.json", settings))

    class Stop(Exception):
        pass

    def stop(*_: object, **__: object) -> None:
        raise Stop

    busy = {"port": False}
    monkeypatch.setattr(up, "plan", lambda *_, **__: [up.Service("azurite", [], 1, "")])
    monkeypatch.setattr(up, "port_open", lambda *_: busy["port"])
    monkeypatch.setattr(up.Supervisor, "start", stop)  # stop right after the state step
    monkeypatch.setattr(up.signal, "signal", lambda *_: None)  # keep pytest's own handlers
    with pytest.raises(Stop):
        up.run(keep_state=True, echo=lambda _line: None)
    assert (tree / ".sandbox" / "azurite").exists() and (tree / ".sandbox" / "bus.sqlite3").exists()
    busy["port"] = True  # a sandbox still running owns the files: they stay
    with pytest.raises(Stop):
        up.run(echo=lambda _line: None)
    assert (tree / ".sandbox" / "azurite").exists()
    busy["port"] = False
    with pytest.raises(Stop):
        up.run(echo=lambda _line: None)
    assert not (tree / ".sandbox" / "azurite").exists()
