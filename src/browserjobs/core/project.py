"""The SAM project a command works on: the folder with template.yaml, samconfig.toml, functions/ and
statemachines/.

As with `sam`, that is the current directory, or BROWSERJOBS_PROJECT_DIR when it is set. Installed code never
looks for the project beside its own files: a package installed from a wheel has no checkout around it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_VARIABLE = "BROWSERJOBS_PROJECT_DIR"


def project_dir() -> Path:
    return Path(os.environ.get(PROJECT_DIR_VARIABLE) or Path.cwd()).resolve()


def project_file(*parts: str) -> Path:
    """A file of the project that must exist (FileNotFoundError saying where it was looked for)."""
    path = project_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run from the project's folder (the one with template.yaml) "
            f"or set {PROJECT_DIR_VARIABLE}"
        )
    return path
