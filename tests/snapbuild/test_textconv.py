"""The canonical text form of a snapshot database, and plain `git diff` through the configured driver."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.consumer import manual_setup_command
from snapbuild.errors import DatabaseError
from snapbuild.snapshots import commit_snapshot
from snapbuild.textconv import dump_database

from .diff_support import base_rows, changed_rows, write_snapshot_db, write_snapshot_dir


def dump(path: Path) -> str:
    out = io.StringIO()
    dump_database(path, out)
    return out.getvalue()


def test_one_line_per_row_sorted_by_key_with_a_header_per_table(tmp_path: Path) -> None:
    rows = base_rows()
    text = dump(write_snapshot_db(tmp_path / "a.db", rows))
    lines = text.splitlines()
    assert text.endswith("\n") and "\r" not in text
    assert len(lines) == sum(len(r) for r in rows.values()) + 2 * len(rows)
    headers = [line for line in lines if line.startswith("## ")]
    assert headers == [
        "## catalog_playlist_tracks key(playlist_id, position, song_id)",
        "## catalog_playlists key(playlist_id)",
        "## catalog_toplists key(toplist_id, playlist_id)",
        "## catalog_track_files key(location_id)",
        "## catalog_tracks key(song_id)",
    ]
    tracks = [line for line in lines if line.startswith("catalog_tracks[")]
    assert [line.split("]")[0] for line in tracks[:3]] == [
        "catalog_tracks[song_id=1", "catalog_tracks[song_id=2", "catalog_tracks[song_id=3",
    ]  # numeric key order, not text order
    assert (
        'catalog_tracks[song_id=10] platform="netease" remote_song_id="65810" name="海屿你" '
        'singers="马也 / Crabbit" ext="flac" file_size_bytes=123466 metadata_json="{\\"duration_ms\\": 0}"'
    ) in lines
    assert "catalog_playlist_tracks[playlist_id=1,position=1,song_id=2]" in lines
    assert any(line.startswith('catalog_toplists[toplist_id="kuwo_top_16",playlist_id=1] ') for line in lines)


def test_values_are_escaped_so_a_row_stays_one_line(tmp_path: Path) -> None:
    text = dump(write_snapshot_db(tmp_path / "a.db", base_rows()))
    playlist = next(line for line in text.splitlines() if line.startswith("catalog_playlists[playlist_id=1]"))
    assert 'description="第一行\\n第二行 \\"quoted\\" \\\\ back"' in playlist
    assert "catalog_playlists[playlist_id=2]" in text and " cover_url=null " in text
    # Each value part parses back as JSON.
    assert json.loads(playlist.split(" description=")[1].split(" cover_url=")[0]) == '第一行\n第二行 "quoted" \\ back'


def test_blobs_reals_and_tables_without_a_primary_key(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.execute("create table t (b text, a integer)")
    conn.executemany("insert into t values (?, ?)", [("z", 2), ("a", 3), (None, 1), ("a", 1)])
    conn.execute('create table "we""ird" (k text primary key, v blob, r real) without rowid')
    conn.execute("""insert into "we""ird" values ('x', x'00ff10', 1.5), ('é', NULL, -0.25)""")
    conn.commit()
    conn.close()
    lines = dump(path).splitlines()
    assert lines[0] == "## t key(b, a)"
    assert lines[2:6] == ["t[b=null,a=1]", 't[b="a",a=1]', 't[b="a",a=3]', 't[b="z",a=2]']
    assert '## we"ird key(k)' in lines
    assert "we\"ird[k=\"x\"] v=x'00FF10' r=1.5" in lines
    assert 'we"ird[k="é"] v=null r=-0.25' in lines


def test_invalid_utf8_is_shown_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    conn = sqlite3.connect(path)
    conn.execute("create table t (k integer primary key, v text)")
    conn.execute("insert into t values (1, cast(x'41ff42' as text)), (2, 'ok')")
    conn.commit()
    conn.close()
    lines = dump(path).splitlines()
    assert lines[2:] == ['t[k=1] v="A\\xffB"', 't[k=2] v="ok"']


def test_physical_order_does_not_change_the_text(tmp_path: Path) -> None:
    rows = base_rows()
    plain = write_snapshot_db(tmp_path / "a.db", rows)
    shuffled = write_snapshot_db(tmp_path / "b.db", rows, layout_seed=3)
    assert plain.read_bytes() != shuffled.read_bytes()
    assert dump(plain) == dump(shuffled)


def test_empty_database_and_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert dump(empty) == ""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 200)
    with pytest.raises(DatabaseError, match="not a SQLite database") as caught:
        dump(junk)
    assert caught.value.path == junk
    with pytest.raises(DatabaseError, match="no such file"):
        dump(tmp_path / "missing.db")
    assert not list(tmp_path.glob("*-journal")) and not list(tmp_path.glob("*-wal"))


def test_cli_writes_utf8_whatever_the_console_encoding(tmp_path: Path) -> None:
    db = write_snapshot_db(tmp_path / "a.db", base_rows())
    env = {**os.environ, "PYTHONIOENCODING": "cp1252", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "snapbuild", "textconv", str(db)], capture_output=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert b"\r\n" not in done.stdout
    assert done.stdout.decode("utf-8") == dump(db)
    assert "海屿你" in done.stdout.decode("utf-8")


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 1000)
    assert main(["textconv", str(junk)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snapbuild: error:") and err.count("\n") == 1


# --- plain git with the driver configured by consumer-setup ---------------------------------


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True)
    return done.stdout.decode("utf-8")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    rows = base_rows()
    for n, version in enumerate((rows, changed_rows(rows))):
        snapshot = tmp_path / f"snap{n}"
        write_snapshot_dir(snapshot, version, generated_at=f"2026-01-0{n + 1}T00:00:00Z")
        commit_snapshot(tmp_path / "snapshots.git", snapshot)
    target = tmp_path / "clone"
    git("clone", "-q", str(tmp_path / "snapshots.git"), str(target))
    return target


def test_git_diff_shows_row_lines_after_consumer_setup(clone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = git("diff", "HEAD~1", "HEAD", "--", "catalog_read.db", cwd=clone)
    assert "Binary files" in before and "catalog_tracks[" not in before

    assert main(["consumer-setup", str(clone)]) == 0
    out = capsys.readouterr().out
    assert manual_setup_command() in out
    assert git("config", "--local", "diff.snapbuild.cachetextconv", cwd=clone).strip() == "true"
    command = git("config", "--local", "diff.snapbuild.textconv", cwd=clone).strip()
    assert command.endswith("-m snapbuild textconv") and Path(sys.executable).as_posix() in command

    diff = git("diff", "HEAD~1", "HEAD", "--", "catalog_read.db", cwd=clone)
    assert '-catalog_tracks[song_id=10] platform="netease" remote_song_id="65810" name="海屿你" ' in diff
    assert '+catalog_tracks[song_id=10] platform="netease" remote_song_id="65810" name="海屿你 (Live)" ' in diff
    assert "-catalog_tracks[song_id=40] " in diff and "+catalog_tracks[song_id=41] " in diff
    assert '+catalog_track_files[location_id=1005] ' in diff and 'locator="moved/5.flac"' in diff
    assert "-catalog_playlist_tracks[playlist_id=2,position=13,song_id=37]" in diff
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) < 60  # row lines, not the whole table
    # git log -p uses the driver too, and cachetextconv stored the converted text as notes.
    assert '+catalog_tracks[song_id=42] ' in git("log", "-p", "-1", "--", "catalog_read.db", cwd=clone)
    assert "refs/notes/textconv/snapbuild" in git("for-each-ref", cwd=clone)


def test_consumer_setup_portable_and_on_a_bare_repository(clone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consumer-setup", "--portable", str(clone)]) == 0
    assert git("config", "--local", "diff.snapbuild.textconv", cwd=clone).strip() == "snapbuild textconv"
    bare = tmp_path / "snapshots.git"
    assert main(["consumer-setup", str(bare)]) == 0
    assert git("--git-dir", str(bare), "config", "diff.snapbuild.cachetextconv").strip() == "true"
    assert str(bare.resolve()) in capsys.readouterr().out


def test_consumer_setup_outside_a_repository_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    # GIT_CEILING_DIRECTORIES stops git from finding a repository above tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert main(["consumer-setup", str(outside)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snapbuild: error:") and "not a git repository" in err and err.count("\n") == 1
    assert main(["consumer-setup", str(tmp_path / "missing")]) == 1
