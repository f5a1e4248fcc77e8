"""The Procfile's command lines, and the environment the service's processes start with."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not resolved: the venv's bin, not the base Python's.
VENV_BIN = Path(sys.executable).parent
_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


def procfile_command(kind: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's `kind:` line as argv, `$VARS` taken from `env`, the venv's executable."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind:
            argv = [_VAR.sub(lambda m: env[m[1]], word) for word in shlex.split(command)]
            local = VENV_BIN / argv[0]
            argv[0] = str(local) if local.exists() else (shutil.which(argv[0]) or argv[0])
            return argv
    raise ValueError(f"the Procfile has no {kind}: line")


def service_variables() -> set[str]:
    """Every variable .env.example lists."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def child_env(**values: str) -> dict[str, str]:
    """This process's environment without the service's variables (a child must not inherit
    the caller's REDIS_URL or LOG_LEVEL), the venv first on PATH, then `values`."""
    ours = service_variables()
    env = {key: value for key, value in os.environ.items() if key not in ours}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env | values
