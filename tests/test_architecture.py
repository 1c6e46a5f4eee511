"""The layering docs/architecture.md describes: every import points down, no module grows past 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Each module's layer; a module may import only modules of a lower layer.
#: Inside a subpackage the decimals order its modules the same way.
LAYERS: dict[str, dict[str, float]] = {
    "snapbuild": {
        "errors": 0,
        "defaults": 1, "fsutil": 1, "sqlite": 1, "urls": 1, "assemble": 1,
        "schema": 2, "manifest": 2,
        "sample.hashing": 2.0, "sample.tables": 2.0, "sample.rows": 2.1, "sample.media": 2.2,
        "sample.catalog": 2.3, "sample.mutate": 2.3, "sample": 2.9,
        "source": 3, "hooks": 3,
        "git.objects": 3.0, "git.revisions": 3.0, "git.store": 3.1, "git.remote": 3.2, "git": 3.9,
        "signing.sshsig": 3.0, "signing.agent": 3.1, "signing.allowed": 3.1, "signing.keys": 3.2,
        "signing.commits": 3.3, "signing": 3.9,
        "readmodel": 4, "sidereader": 4, "diff": 4, "textconv": 4, "consumer": 4, "notify": 4, "parts": 4,
        "export": 5, "verify": 5, "layout": 5,
        "snapshots": 6,
        "pipeline": 7,
        "cli.base": 8.0, "cli.progress": 8.0, "cli.notify": 8.05, "cli.signing": 8.05, "cli.consumer": 8.1, "cli.export": 8.1, "cli.history": 8.1, "cli.sample": 8.1, "cli": 8.9,
        "__main__": 9, "": 9,
    },
    "origin_server": {
        "errors": 0,
        "keys": 1, "resolve": 1, "conditional": 1, "media": 1, "body": 1, "catalog": 1,
        "tokens": 2, "accesslog": 2, "config": 2,
        "app": 3, "connections": 3,
        "server": 4,
        "cli": 5,
        "__main__": 6, "": 6,
    },
}

MAX_LINES = 500


def _modules(package: str) -> dict[str, Path]:
    """Dotted name inside ``package`` ('' for the package itself) -> source file."""
    base = ROOT / package
    found: dict[str, Path] = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(package: str, name: str, path: Path) -> set[str]:
    """The modules of ``package`` that module ``name`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    if not is_package:
        here = here[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else list(here)
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == package or node.module.startswith(package + ".")):
                module = node.module.removeprefix(package).lstrip(".")
            else:
                continue
            # "from . import x" and "from .git import store" name modules too.
            for alias in node.names:
                candidate = f"{module}.{alias.name}" if module else alias.name
                targets.add(candidate)
            targets.add(module)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    targets.add(alias.name.removeprefix(package).lstrip("."))
    return targets


def _layer(package: str, module: str) -> float | None:
    return LAYERS[package].get(module)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_module_has_a_layer(package: str) -> None:
    missing = sorted(name for name in _modules(package) if name not in LAYERS[package])
    assert missing == [], f"give these modules a layer here and in docs/architecture.md: {missing}"


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_point_down(package: str) -> None:
    modules = _modules(package)
    upward = []
    for name, path in modules.items():
        own = _layer(package, name)
        for target in _imported(package, name, path):
            if target not in modules or target == name:
                continue  # an attribute ("from .x import Name"), or the module itself
            if name.startswith(target + ".") or target == "":
                continue  # a subpackage's module naming its own package is not an import of its code
            other = _layer(package, target)
            if own is not None and other is not None and other >= own:
                upward.append(f"{package}.{name or '__init__'} ({own}) imports {package}.{target} ({other})")
    assert upward == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_module_is_longer_than_the_limit(package: str) -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in _modules(package).values()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a low module importing a high one is reported."""
    fake = tmp_path / "errors.py"
    fake.write_text("from .cli import main\nfrom . import export\n", encoding="utf-8")
    assert {"cli", "cli.main", "", "export"} <= _imported("snapbuild", "errors", fake)
    assert _layer("snapbuild", "cli") > _layer("snapbuild", "errors")
