"""`pip install <checkout>` into a clean virtual environment, as an operator who only wants the CLI does.

The environment is outside the checkout and gets the declared dependencies from the package index (pip's
cache makes a second run quick): what it can import is what the package ships, nothing of the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SECONDS = 600


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("clean-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    # The checkout's tracked files, copied: pip builds in the source folder and leaves build/ there.
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    checkout = home / "checkout"
    for name in tracked.stdout.splitlines():
        source, copy = ROOT / name, checkout / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, copy)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(checkout)],
        cwd=home,
        check=True,
        timeout=INSTALL_SECONDS,
    )
    return home


def _run(home: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{home / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_runs_from_a_clean_install(installed: Path) -> None:
    result = _run(installed, "browserjobs", "--help")

    assert result.returncode == 0, result.stderr
    assert "submit" in result.stdout and "dlq" in result.stdout


def test_one_import_root_and_its_data_are_installed(installed: Path) -> None:
    probe = (
        "import importlib.util, json, sysconfig, pathlib\n"
        "import browserjobs, browserjobs.core.schema as schema\n"
        "site = pathlib.Path(sysconfig.get_paths()['purelib'])\n"
        "static = site / 'browserjobs' / 'ops' / 'inspector' / 'static'\n"
        "print(json.dumps({'top': sorted(p.name for p in site.iterdir()),\n"
        "                  'schemas': sorted(p.name for p in schema.schemas_dir().rglob('*.json')),\n"
        "                  'inside': str(schema.schemas_dir()).startswith(str(site)),\n"
        "                  'static': sorted(str(p.relative_to(static)) for p in static.rglob('*'))}))\n"
    )
    result = _run(installed, str(installed / "venv" / "bin" / "python"), "-c", probe)

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert "browserjobs" in found["top"]
    assert not {"local", "worker", "jobcore"} & set(found["top"]), found["top"]
    assert {"job.schema.json", "result.schema.json", "browse.schema.json"} <= set(found["schemas"])
    assert found["inside"], "the schemas must come from the installed package"
    vendored = {"vendor/elk.bundled.js", "vendor/LICENSE-elkjs.md"}  # a subfolder: package-data lists it
    assert {"index.html", "graph.js", *vendored} <= set(found["static"])


def test_the_local_stack_commands_say_which_extra_they_need(installed: Path) -> None:
    result = _run(installed, "browserjobs", "local", "--port", "0")

    assert result.returncode == 2
    assert "pip install 'browserjobs[local]'" in result.stderr


def test_a_bad_job_is_refused_before_any_aws_call(installed: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text("{}")

    result = _run(installed, "browserjobs", "submit", str(job))

    assert result.returncode == 2
    assert "'lockKey' is a required property" in result.stderr
