"""The layers' import direction, enforced on every module of every layer.

domain        -> the standard library and eventsourcing.domain only
application   -> domain (and the eventsourcing framework, no driver or web library)
infrastructure-> application and domain, never interfaces
interfaces    -> anything below it
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)
LAYERS = ("domain", "application", "infrastructure", "interfaces")


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def allowed(layer: str, module: str) -> bool:
    top = module.split(".")[0]
    if top in STDLIB or top == "__future__" or top == layer:
        return True
    if layer == "domain":
        return module == "eventsourcing.domain" or module.startswith("eventsourcing.domain.")
    if layer == "application":
        if top == "domain":
            return True
        return top == "eventsourcing" and not module.startswith(
            ("eventsourcing.postgres", "eventsourcing.sqlite", "eventsourcing.popo")
        )
    if layer == "infrastructure":
        return top != "interfaces"
    return True  # interfaces


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for module in imports_of(path)
        if not allowed(layer, module)
    ]
    assert offences == []


def test_the_checker_catches_an_offence() -> None:
    assert not allowed("domain", "eventsourcing.application")
    assert not allowed("domain", "application.bank")
    assert not allowed("application", "infrastructure.bootstrap")
    assert not allowed("application", "fastapi")
    assert not allowed("infrastructure", "interfaces.http.app")


def test_import_linter_layers_contract() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    if not linter.exists():
        pytest.skip("import-linter is not installed in this environment")
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
