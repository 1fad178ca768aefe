"""The architecture as checked contracts: the layer order of the rooms, no import cycles, and lint.

These run the same tools CI runs (``lint-imports`` with the contract in ``pyproject.toml``, and
``ruff check``), so a change that breaks them fails here first. A missing tool is a failure, not
a skip: ``pip install -e '.[test]'`` installs both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    """The tool installed beside this Python (a virtual environment's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_import_contracts_are_kept():
    """The layer order, and the search reaching a trial only through the trial engine."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    run = subprocess.run([tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert f"{len(contracts)} kept, 0 broken" in run.stdout


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph("paretodistill")
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported != importer and graph.chain_exists(imported=importer, importer=imported):
                cycles.append(f"{importer} -> {imported} -> ... -> {importer}")
    assert cycles == []


def test_ruff_is_clean():
    run = subprocess.run([tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_every_room_has_a_place_in_the_layer_order():
    """A new module or package outside the contract would escape it: each must be named in a layer."""
    import tomllib

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    named = {part.strip() for layer in layers for part in layer.replace("|", ":").split(":")}
    package = ROOT / "src" / "paretodistill"
    rooms = {f"paretodistill.{p.stem}" for p in package.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert rooms - named == set(), "add these to [tool.importlinter] layers in pyproject.toml"
