"""Copies of infra/ for the negative tests, and the rules they break on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.infra import infra_checks as checks

# name of a deliberately broken copy of infra/ -> (file, exact text, replacement)
BREAKS: dict[str, tuple[str, str, str]] = {
    "blob-public": ("modules/storage.bicep", "allowBlobPublicAccess: false", "allowBlobPublicAccess: true"),
    "purge-off": ("modules/keyvault.bicep", "enablePurgeProtection: true", "enablePurgeProtection: false"),
    "tls10": ("modules/storage.bicep", "minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'"),
    "sb-tls10": ("modules/servicebus.bicep", "minimumTlsVersion: '1.2'", "minimumTlsVersion: '1.0'"),
    "http-allowed": ("modules/functionapp.bicep", "httpsOnly: true", "httpsOnly: false"),
    "law-local-auth": (
        "modules/monitoring.bicep",
        "disableLocalAuth: true\n    }",
        "disableLocalAuth: false\n    }",
    ),
    "syntax-error": ("modules/identity.bicep", "resource identity", "resource identity ="),
}
CLEAN = "as-committed"


def copy_infra(dest: Path) -> Path:
    shutil.copytree(checks.INFRA_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return dest


def break_file(infra: Path, file: str, old: str, new: str) -> None:
    path = infra / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{file} no longer contains {old!r}; update the infra test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
