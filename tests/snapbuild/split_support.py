"""Helpers for the split-layout tests: real sample catalogs, exported and committed with a small part size.

The part size is scaled down from the default (32 MiB) so that a catalog of
a few thousand tracks (about 1 MiB) takes the split layout in CI.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from snapbuild.pipeline import RunResult, export_and_commit
from snapbuild.sample import mutate_sample_catalog, write_sample_catalog

KiB = 1024
#: The tests' part size: 64 KiB, 1/512 of the default.
PART = 64 * KiB
T1, T2, T3 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def sample_catalog(path: Path, tracks: int = 3000) -> Path:
    """A sample catalog (3000 tracks: a read model of about 1.2 MiB)."""
    write_sample_catalog(path, tracks=tracks, playlists=max(tracks // 10, 2), seed=7)
    return path


def change(catalog: Path, seed: int = 1) -> None:
    """Change 1% of the catalog, as the benchmarks do."""
    mutate_sample_catalog(catalog, fraction=0.01, seed=seed)


def commit(catalog: Path, repo: Path, generated_at: str = T1, part_size: int | None = PART) -> RunResult:
    """Export the catalog and commit it to ``repo`` (created if missing)."""
    return export_and_commit(catalog, repo, generated_at=generated_at, part_size=part_size)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_of(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def run_snapbuild(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI as a subprocess (``python -m snapbuild``), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "snapbuild", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, encoding="utf-8", check=False,
    )


def run_stdlib_assembler(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The clone's committed ``assemble.py`` under an isolated interpreter that sees no site-packages."""
    return subprocess.run(
        [sys.executable, "-I", "-S", "assemble.py", *args],
        cwd=clone, capture_output=True, text=True, encoding="utf-8", check=False,
    )
