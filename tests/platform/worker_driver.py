"""Drives the real Azure Functions Python worker's indexing, as the Functions host does at start.

Runs inside the cached Python 3.13 worker environment (tests/platform/worker_env.py), never in
the project's venv: `python worker_driver.py APP_DIR OUT_JSON` with the app settings in the
environment (PYTHON_SCRIPT_FILE_NAME picks the script, function_app.py by default).

It does what the platform's proxy worker does with the library worker `azure_functions_runtime`:
puts the app directory first on sys.path, hands it the protobuf module (`protos`) and the host
address in the request properties, sends a WorkerInitRequest (the worker imports the script and
indexes every function there, failing the init on any load error) and then a
FunctionsMetadataRequest (the worker answers with the RpcFunctionMetadata the host registers).
The outcome is written to OUT_JSON: the init status and exception message, and per function its
BindingInfo map and raw bindings (the JSON the host builds its triggers from).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROTOS_DIR_ENV = "WORKER_CHECK_PROTOS_DIR"


@dataclass
class WorkerRequest:
    """The proxy worker's request wrapper (name, the StreamingMessage, properties)."""

    name: str
    request: Any
    properties: dict[str, Any] = field(default_factory=dict)


def _protos() -> types.ModuleType:
    protos_dir = os.environ[PROTOS_DIR_ENV]
    sys.path.insert(0, protos_dir)
    try:
        import worker_rpc_pb2  # type: ignore[import-not-found]
    finally:
        sys.path.remove(protos_dir)  # nothing of it may shadow the app's own modules
    return worker_rpc_pb2


def _status(pb: Any, result: Any) -> dict[str, Any]:
    return {
        "status": pb.StatusResult.Status.Name(result.status),
        "message": result.exception.message,
    }


async def _drive(app_dir: Path) -> dict[str, Any]:
    pb = _protos()
    # The platform starts the worker in the app directory, with the app's packages importable.
    os.chdir(app_dir)
    sys.path.insert(0, str(app_dir))
    import azure_functions_runtime as worker

    init = pb.StreamingMessage(
        request_id="init",
        worker_init_request=pb.WorkerInitRequest(
            host_version="4.0.0",
            function_app_directory=str(app_dir),
            worker_directory=str(Path(worker.__file__).parent),
        ),
    )
    init_response = await worker.worker_init_request(
        WorkerRequest("WorkerInitRequest", init, {"protos": pb, "host": "127.0.0.1"})
    )
    outcome: dict[str, Any] = {
        "worker_version": worker.version.VERSION,
        "init": _status(pb, init_response.result),
    }
    if init_response.result.status != pb.StatusResult.Success:
        return outcome

    metadata = pb.StreamingMessage(
        request_id="metadata",
        functions_metadata_request=pb.FunctionsMetadataRequest(function_app_directory=str(app_dir)),
    )
    response = await worker.functions_metadata_request(WorkerRequest("WorkerMetadataRequest", metadata))
    outcome["metadata"] = _status(pb, response.result)
    outcome["use_default_metadata_indexing"] = response.use_default_metadata_indexing
    outcome["functions"] = [
        {
            "name": fn.name,
            "binding_info": {
                name: {
                    "type": info.type,
                    "direction": pb.BindingInfo.Direction.Name(info.direction),
                    "data_type": pb.BindingInfo.DataType.Name(info.data_type),
                }
                for name, info in fn.bindings.items()
            },
            "raw_bindings": [json.loads(raw) for raw in fn.raw_bindings],
            "properties": dict(fn.properties),
        }
        for fn in response.function_metadata_results
    ]
    return outcome


def main() -> None:
    app_dir, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    outcome = asyncio.run(_drive(app_dir))
    out.write_text(json.dumps(outcome, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
