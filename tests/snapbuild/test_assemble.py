"""The standard-library assembler, as a consumer without snapbuild runs it from the clone, and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.assemble import LayoutError, layout_of
from snapbuild.cli import main

from .repo_support import git
from .split_support import (
    PART,
    commit,
    manifest_of,
    run_snapbuild,
    run_stdlib_assembler,
    sample_catalog,
    sha256_of,
)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of a split snapshot repository, as ``git clone`` leaves it (not assembled)."""
    repo = tmp_path / "snapshots.git"
    commit(sample_catalog(tmp_path / "catalogsync.db"), repo)
    target = tmp_path / "clone"
    git("clone", "--quiet", str(repo), target)
    return target


def test_the_committed_assembler_needs_only_the_standard_library(clone: Path) -> None:
    # The interpreter the test runs the script with cannot import snapbuild (no site-packages).
    isolated = run_stdlib_assembler(clone, "--check")
    assert isolated.returncode == 0, isolated.stderr
    no_snapbuild = subprocess.run([sys.executable, "-I", "-S", "-c", "import snapbuild"], capture_output=True, cwd=clone)
    assert no_snapbuild.returncode != 0

    assert not (clone / "catalog_read.db").exists()  # --check writes nothing
    done = run_stdlib_assembler(clone)
    assert done.returncode == 0, done.stderr
    assert "assembled catalog_read.db from 20 pieces" in done.stdout and "matches the manifest" in done.stdout
    assert sha256_of(clone / "catalog_read.db") == manifest_of(clone)["db_sha256"]
    assert git("-C", clone, "status", "--porcelain", "--ignored").stdout == "!! catalog_read.db\n"
    elsewhere = clone.parent / "live" / "catalog.db"
    elsewhere.parent.mkdir()
    assert run_stdlib_assembler(clone, "--output", str(elsewhere)).returncode == 0
    assert elsewhere.read_bytes() == (clone / "catalog_read.db").read_bytes()
    assert run_snapbuild("verify", "--repo", clone).returncode == 0


def _missing(piece: Path) -> None:
    piece.unlink()


def _truncated(piece: Path) -> None:
    piece.write_bytes(piece.read_bytes()[:1000])


def _altered(piece: Path) -> None:
    data = bytearray(piece.read_bytes())
    data[5000] ^= 0xFF
    piece.write_bytes(bytes(data))


def _longer(piece: Path) -> None:
    piece.write_bytes(piece.read_bytes() + b"\0" * 4096)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_missing, "is missing"),
        (_truncated, f"is truncated: 1000 of {PART} bytes"),
        (_altered, "does not match its sha256 in the manifest"),
        (_longer, f"is longer than the {PART} bytes the manifest lists"),
    ],
)
def test_a_damaged_piece_is_refused_by_name_and_the_old_database_kept(clone: Path, damage, reason: str) -> None:
    assert run_stdlib_assembler(clone).returncode == 0
    before = (clone / "catalog_read.db").read_bytes()
    damage(clone / "catalog_read.db.parts" / "00007")

    refused = run_stdlib_assembler(clone)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert f"piece catalog_read.db.parts/00007 {reason}" in refused.stderr
    assert "catalog_read.db was left as it was" in refused.stderr
    assert (clone / "catalog_read.db").read_bytes() == before
    assert sorted(p.name for p in clone.iterdir() if p.name.startswith(".catalog_read")) == []

    verify = run_snapbuild("verify", "--repo", clone)
    assert verify.returncode == 1
    assert verify.stderr.startswith("snapbuild: error:") and verify.stderr.count("\n") == 1
    assert f"piece catalog_read.db.parts/00007 {reason}" in verify.stderr


def test_a_manifest_that_points_outside_the_pieces_is_refused(clone: Path) -> None:
    manifest = manifest_of(clone)
    manifest["parts"][1]["name"] = "../../outside"
    (clone / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    refused = run_stdlib_assembler(clone)
    assert refused.returncode == 1
    assert "manifest parts[1] must be the piece named '00001'" in refused.stderr
    assert not (clone / "catalog_read.db").exists()


def test_pieces_that_do_not_add_up_to_db_sha256_are_refused(clone: Path) -> None:
    manifest = manifest_of(clone)
    manifest["db_sha256"] = "0" * 64
    (clone / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    refused = run_stdlib_assembler(clone)
    assert refused.returncode == 1 and "do not match db_sha256" in refused.stderr
    assert not (clone / "catalog_read.db").exists()


def test_a_target_that_cannot_be_replaced_is_kept_and_said(clone: Path) -> None:
    (clone / "catalog_read.db").mkdir()
    (clone / "catalog_read.db" / "keep").write_text("x", encoding="utf-8")
    refused = run_stdlib_assembler(clone)
    assert refused.returncode == 1 and "cannot replace" in refused.stderr
    assert (clone / "catalog_read.db" / "keep").exists()
    assert [p.name for p in clone.iterdir() if p.name.startswith(".catalog_read")] == []


def test_a_whole_snapshot_has_nothing_to_assemble(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    commit(sample_catalog(tmp_path / "small.db", tracks=150), repo, part_size=None)
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    clone.joinpath("assemble.py").write_bytes(Path(sys.modules["snapbuild.assemble"].__file__).read_bytes())
    done = run_stdlib_assembler(clone)
    assert done.returncode == 0 and "nothing to assemble" in done.stdout
    assert run_stdlib_assembler(clone, "--hook").stdout == ""
    assert main(["verify", "--repo", str(clone)]) == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"part_size": 0, "parts": []}, "part_size must be a positive integer"),
        ({"part_size": 4096, "parts": []}, "parts must be a non-empty list"),
        ({"part_size": 4096, "parts": [{"name": "00001", "size": 1, "sha256": "0" * 64}]}, "parts[0] must be"),
        ({"part_size": 4096, "parts": [{"name": "00000", "size": 4097, "sha256": "0" * 64}]}, "from 1 to the part size"),
        ({"part_size": 4096, "parts": [{"name": "00000", "size": True, "sha256": "0" * 64}]}, "from 1 to the part size"),
        ({"part_size": 4096, "parts": [{"name": "00000", "size": 1, "sha256": "0" * 63}]}, "64 lowercase hex"),
        ({"parts": [{"name": "00000", "size": 1, "sha256": "0" * 64}]}, "part_size must be"),
    ],
)
def test_the_layout_in_a_manifest_is_checked(payload: dict, message: str) -> None:
    with pytest.raises(LayoutError, match=message.replace("[", r"\[").replace("]", r"\]")):
        layout_of(payload)


def test_a_manifest_without_the_layout_fields_is_the_whole_layout() -> None:
    assert layout_of({"snapshot_id": "snap-0", "db_sha256": "0" * 64}) is None
