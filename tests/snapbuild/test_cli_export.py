"""`snapbuild export` and `snapbuild verify` run as a user runs them: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from snapbuild import SnapshotManifest

from .conftest import GENERATED_AT, CATALOG_ROWS, write_catalog


def snapbuild(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapbuild", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("snapbuild: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_export_prints_a_one_line_summary_then_unchanged(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "snap"
    first = snapbuild("export", "--db", str(small_catalog), "--target-dir", str(target), "--generated-at", GENERATED_AT)
    assert first.returncode == 0, first.stderr
    manifest = SnapshotManifest.read(target / "manifest.json")
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"exported {manifest.snapshot_id}")
    assert "1 tracks" in lines[0] and "repairs: none" in lines[0]
    assert first.stderr == ""  # no progress bar when stderr is not a terminal
    again = snapbuild("export", "--db", str(small_catalog), "--target-dir", str(target))
    assert again.returncode == 0
    assert again.stdout.startswith(f"unchanged {manifest.snapshot_id}")


def test_export_json_prints_the_manifest(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "snap"
    result = snapbuild("export", "--db", str(small_catalog), "--target-dir", str(target), "--json")
    assert result.returncode == 0
    assert result.stdout == (target / "manifest.json").read_text(encoding="utf-8")
    assert json.loads(result.stdout)["track_count"] == 1


def test_source_date_epoch_pins_generated_at_and_the_option_wins(small_catalog: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1776585600"}
    result = snapbuild("export", "--db", str(small_catalog), "--target-dir", str(tmp_path / "a"), "--json", env=env)
    assert json.loads(result.stdout)["generated_at"] == "2026-04-19T08:00:00Z"
    again = snapbuild("export", "--db", str(small_catalog), "--target-dir", str(tmp_path / "b"), env=env)
    assert again.returncode == 0
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    option = snapbuild(
        "export", "--db", str(small_catalog), "--target-dir", str(tmp_path / "c"), "--json",
        "--generated-at", "2027-01-01T00:00:00Z", env=env,
    )
    assert json.loads(option.stdout)["generated_at"] == "2027-01-01T00:00:00Z"


def test_operational_errors_exit_1_with_one_line(tmp_path: Path) -> None:
    result = snapbuild("export", "--db", str(tmp_path / "missing.db"), "--target-dir", str(tmp_path / "s"))
    assert_one_line_error(result, 1, "not found", "missing.db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database, not even close" * 10)
    assert_one_line_error(snapbuild("export", "--db", str(bad), "--target-dir", str(tmp_path / "s")), 1, "not a SQLite")
    assert not (tmp_path / "s" / "catalog_read.db").exists()


def test_a_validation_error_names_table_column_and_row(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        CATALOG_ROWS,
        "insert into storage_backends values (3, 'broken', 'nas', null, '{not json');",
    )
    result = snapbuild("export", "--db", str(source), "--target-dir", str(tmp_path / "s"))
    assert_one_line_error(result, 1, "storage_backends.config_json", "id 3")


def test_usage_errors_exit_2(small_catalog: Path, tmp_path: Path) -> None:
    assert_one_line_error(snapbuild("export", "--db", str(small_catalog)), 2, "--target-dir is required")
    assert_one_line_error(
        snapbuild("export", "--db", str(small_catalog), "--target-dir", str(tmp_path), "--generated-at", "noon"), 2,
        "ISO 8601",
    )
    assert_one_line_error(
        snapbuild("export", "--db", str(small_catalog), "--target-dir", str(tmp_path), env={"SOURCE_DATE_EPOCH": "x"}),
        2, "SOURCE_DATE_EPOCH",
    )
    assert_one_line_error(
        snapbuild("export", "--db", str(small_catalog), "--target-dir", str(tmp_path), "--busy-timeout", "-1"), 2
    )
    assert_one_line_error(snapbuild("verify"), 2, "snapbuild verify DIR")


def test_verify_ok_then_tampered(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "snap"
    assert snapbuild("export", "--db", str(small_catalog), "--target-dir", str(target)).returncode == 0
    ok = snapbuild("verify", str(target))
    assert ok.returncode == 0
    assert ok.stdout.startswith("OK snap-") and len(ok.stdout.strip().splitlines()) == 1
    data = bytearray((target / "catalog_read.db").read_bytes())
    data[-10] ^= 0x01
    (target / "catalog_read.db").write_bytes(bytes(data))
    assert_one_line_error(snapbuild("verify", str(target)), 1, "sha256 mismatch")


def test_help_texts_carry_an_example() -> None:
    for command in ("export", "verify"):
        result = snapbuild(command, "--help")
        assert result.returncode == 0
        assert "Example: snapbuild " + command in result.stdout
