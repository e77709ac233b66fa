"""Run as a script: reproduce how the Python worker of Python 3.8-3.12 orders sys.path between its
own packages and the app's, then import the Service Bus SDK-type binding extension as indexing would.

Mirrors `DependencyManager` of the platform worker (Azure/azure-functions-python-worker,
azure_functions_worker/utils/dependency.py, main.py and dispatcher.py):

1. The host starts the worker with the worker's package folder (``.../python/3.11/LINUX/X64``), the
   app's site-packages and the app folder on the path, in the order of the hosting (``--order``).
2. Worker start (main.py): only when PYTHON_ISOLATE_WORKER_DEPENDENCIES is true-like,
   ``use_worker_dependencies`` drops the app's paths and puts the worker's folder first.
3. The worker imports its own transport (grpc, protobuf): these stay in ``sys.modules``.
4. Worker init request (dispatcher.py): only when the setting is true-like,
   ``prioritize_customer_dependencies`` removes the worker's folder, forgets every module loaded
   from it, and orders the path app packages, ..., worker folder, app folder.
5. Indexing imports the app, which imports the extension.

Without the setting steps 2 and 4 do nothing (the worker's default for 3.8-3.12 is off), so the
worker's grpc and protobuf, already imported, are the ones the app gets.

Prints one JSON object: what the worker loaded, whether the extension imported (or why not) and
which grpc/protobuf the app ended up with. Imports nothing of the project.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
from types import ModuleType
from typing import Any

SETTING = "PYTHON_ISOLATE_WORKER_DEPENDENCIES"
SCRIPT_ROOT = "AzureWebJobsScriptRoot"
WORKER_FOLDER = re.compile(r".*python(\/|\\)\d+\.\d+(\/|\\)(WINDOWS|LINUX|OSX).*")


def is_true_like(value: str | None) -> bool:
    return value is not None and value.lower().strip() in {"1", "true", "t", "yes", "y"}


def forget_modules_from(path: str) -> None:
    """Drop every cached module whose file or package path lies under `path` (and its importer)."""
    if not path:
        return
    sys.path_importer_cache.pop(path, None)
    for name in list(sys.modules):
        if name in sys.builtin_module_names:
            continue
        module = sys.modules.get(name)
        if not isinstance(module, ModuleType):
            continue
        places = set(getattr(module, "__path__", None) or [])
        if getattr(module, "__file__", None):
            places.add(module.__file__)
        if any(str(place).startswith(path) for place in places):
            sys.modules.pop(name, None)


def remove_path(path: str) -> None:
    if path and path in sys.path:
        sys.path[:] = [p for p in sys.path if p != path]
    forget_modules_from(path)


def add_path(path: str, *, first: bool) -> None:
    if path and path not in sys.path:
        if first:
            sys.path.insert(0, path)
        else:
            sys.path.append(path)
        forget_modules_from(path)


def loaded(module: str) -> dict[str, str]:
    imported = importlib.import_module(module)
    return {"version": str(imported.__version__), "file": str(imported.__file__)}


def main() -> dict[str, Any]:
    host_order = json.loads(sys.argv[1])
    sys.path[:0] = host_order  # the host passes these ahead of the standard library
    isolate = is_true_like(os.environ.get(SETTING))
    root = os.environ.get(SCRIPT_ROOT, "")
    app_packages = next((p for p in sys.path if root and p.startswith(root) and "site-packages" in p), "")
    worker_folder = next((p for p in sys.path if WORKER_FOLDER.match(p)), "")
    result: dict[str, Any] = {
        "isolate": isolate,
        "app_packages": app_packages,
        "worker_folder": worker_folder,
    }

    if isolate:  # worker start: use_worker_dependencies
        remove_path(app_packages)
        remove_path(root)
        add_path(worker_folder, first=True)
    result["worker_grpc"] = loaded("grpc")
    result["worker_protobuf"] = loaded("google.protobuf")

    if isolate:  # worker init request: prioritize_customer_dependencies
        remove_path(worker_folder)
        add_path(app_packages, first=True)
        add_path(worker_folder, first=False)
        add_path(root, first=False)
    result["sys_path"] = [p for p in sys.path if p in host_order]

    try:
        importlib.import_module("azurefunctions.extensions.bindings.servicebus")
    except Exception as exc:  # what indexing would report as the app's load error
        result["imported"] = False
        result["error"] = f"{type(exc).__name__}: {exc}"
    else:
        result["imported"] = True
        result["error"] = ""
    result["app_grpc"] = loaded("grpc")
    result["app_protobuf"] = loaded("google.protobuf")
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
