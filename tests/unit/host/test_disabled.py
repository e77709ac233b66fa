"""AzureWebJobs.<name>.Disabled=true turns a function off, as in Azure."""

import httpx

from sandbox.host import LocalHost


def test_a_disabled_function_is_not_served(tmp_path, monkeypatch):
    monkeypatch.setenv("AzureWebJobs.brightpearl_webhook.Disabled", "true")
    values = {"LOCAL_FUNCTION_KEY": "k", "BUS_BACKEND": "local", "LOCAL_BUS_PATH": str(tmp_path / "b.db")}
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    settings = json.loads((root / "local.settings.example.json").read_text())["Values"]
    settings.update(values)
    with LocalHost("function_app", settings=settings, port=0, project_root=root) as host:
        names = [f.name for f in host.functions]
        assert "brightpearl_webhook" not in names and "health" in names
        assert any("brightpearl_webhook: disabled" in line for line in host.describe())
        response = httpx.post(f"{host.api_url}/webhooks/brightpearl", params={"code": "k"}, json={})
        assert response.status_code == 404
