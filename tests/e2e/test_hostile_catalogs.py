"""A corpus of malformed source catalogs, targets and repositories through ``snapbuild export --commit``.

After a first good export into a repository R and a target directory T,
each bad case runs ``snapbuild export --db SOURCE --commit --repo R
--target-dir T``. It must end in one clear stderr line with exit code 1 or 2
(never a traceback), or in a documented repair counted in the manifest; and
the last good snapshot must stay intact: ``snapbuild verify T``,
``snapbuild verify --repo R`` and ``git fsck --full --strict`` pass, and
after an error T's files and R's refs are exactly what they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import git, run_cli, run_ok

pytestmark = pytest.mark.slow

ERROR = "error"  # must fail with one line
REPAIR = "repair"  # must succeed and count a documented repair in the manifest
EITHER = "either"  # a clear error, or success that leaves a valid snapshot (e.g. huge but valid values)


def _sql(*statements: str) -> Callable[[Path], None]:
    def apply(db: Path) -> None:
        conn = sqlite3.connect(db)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()

    return apply


def _relax(table: str, *statements: str) -> Callable[[Path], None]:
    """Rebuild ``table`` without its NOT NULL constraints (CREATE TABLE AS), then run ``statements``."""
    return _sql(
        f"create table relaxed as select * from {table}",
        f"drop table {table}",
        f"alter table relaxed rename to {table}",
        *statements,
    )


def _write(data: bytes) -> Callable[[Path], None]:
    def apply(db: Path) -> None:
        db.write_bytes(data)

    return apply


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _no_tables(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("create table t (a)")
    conn.execute("drop table t")
    conn.close()


def _missing(db: Path) -> None:
    db.unlink()


def _directory(db: Path) -> None:
    db.unlink()
    db.mkdir()
    (db / "catalogsync.db").write_bytes(b"")


# (case id, how to damage a copy of the good catalog, expected outcome, words the error must mention)
SOURCE_CASES: list[tuple[str, Callable[[Path], None], str, tuple[str, ...]]] = [
    ("not-a-database", _write(b"this is a text file, not SQLite\n" * 200), ERROR, ()),
    ("truncated", _truncate, ERROR, ()),
    ("empty-file", _write(b""), ERROR, ()),
    ("no-tables", _no_tables, ERROR, ()),
    ("missing-file", _missing, ERROR, ()),
    ("source-is-a-directory", _directory, ERROR, ()),
    (
        "missing-tables-and-columns",
        _sql("drop table pool_playlists", "alter table songs drop column singers"),
        ERROR,
        ("pool_playlists", "singers"),
    ),
    ("invalid-json", _sql("update storage_backends set config_json = '{\"public_base_url\": ' where id = 2"),
     ERROR, ("storage_backends", "config_json")),
    ("invalid-utf8", _sql("update songs set name = cast(x'41fffe42' as text) where id = 5"), ERROR, ("songs", "name")),
    ("null-required-value", _relax("songs", "update songs set platform = null where id = 7"), ERROR,
     ("songs.platform", "7")),
    ("null-playlist-name", _relax("playlists", "update playlists set name = null where id = 2"), ERROR,
     ("playlists.name", "2")),
    (
        "references-to-missing-rows",
        _sql(
            "insert into playlist_songs (playlist_id, song_id, position) values (1, 987654, 9999)",
            "insert into playlist_songs (playlist_id, song_id, position) values (987654, 1, 1)",
            "insert into file_assets (id, song_id, quality_label, ext, file_size_bytes) values (987654, 987654, 'x', 'flac', 1)",
        ),
        REPAIR,
        (),
    ),
    (
        "duplicate-positions",
        _sql("insert into playlist_songs (playlist_id, song_id, position) "
             "select playlist_id, song_id + 1, position from playlist_songs where playlist_id = 1 and position = 1"),
        REPAIR,
        (),
    ),
    ("duplicate-ids", _relax("songs", "insert into songs select * from songs where id = 3"), ERROR, ("songs.id", "3")),
    ("wrong-type-text-position", _sql("update playlist_songs set position = 'first' where rowid = 1"), ERROR,
     ("playlist_songs.position",)),
    ("wrong-type-text-size", _sql("update songs set file_size_bytes = 'big' where id = 4"), ERROR,
     ("songs.file_size_bytes", "4")),
    ("wrong-type-blob-flag", _sql("update file_locations set is_primary = x'00ff' where id = 1"), ERROR,
     ("file_locations.is_primary", "1")),
    ("wrong-type-real-count", _sql("update playlists set play_count = 1.5 where id = 3"), ERROR,
     ("playlists.play_count", "3")),
    ("text-where-an-id-belongs", _sql("update playlist_songs set song_id = 'abc' where rowid = 2"), REPAIR, ()),
    ("huge-text-values", _sql("update songs set name = hex(randomblob(4000000)) where id = 3",
                              "update songs set metadata_json = '[' || replace(hex(zeroblob(2000000)), '00', '1,') || '1]' where id = 4"),
     EITHER, ()),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A sample catalog and its first good export, committed into R and written to T."""
    require_tool("git")
    base = tmp_path_factory.mktemp("hostile-catalogs")
    catalog = base / "catalogsync.db"
    run_ok("snapbuild", "sample-catalog", catalog, "--tracks", "300", "--playlists", "20", "--seed", "5")
    run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", base / "R", "--target-dir", base / "T")
    assert_intact(base / "R", base / "T")
    return {"base": base, "catalog": catalog, "repo": base / "R", "target": base / "T"}


def tree_digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` (relative name -> sha256), lock files aside."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def refs(repo: Path) -> str:
    return git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo).stdout


@pytest.fixture
def workspace(pristine: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A private copy of the pristine catalog, R and T for one case."""
    shutil.copy2(pristine["catalog"], tmp_path / "catalogsync.db")
    shutil.copytree(pristine["repo"], tmp_path / "R")
    shutil.copytree(pristine["target"], tmp_path / "T")
    return {"catalog": tmp_path / "catalogsync.db", "repo": tmp_path / "R", "target": tmp_path / "T"}


def assert_intact(repo: Path, target: Path) -> None:
    """The last good snapshot in T and R passes every check."""
    run_ok("snapbuild", "verify", target)
    run_ok("snapbuild", "verify", "--repo", repo)
    git("fsck", "--full", "--strict", cwd=repo)


def assert_one_line_error(result: object, words: tuple[str, ...] = ()) -> None:
    assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert stderr and "\n" not in stderr, stderr
    assert "Traceback" not in stderr and stderr.startswith("snapbuild: error:"), stderr
    for word in words:
        assert word in stderr, (word, stderr)


@pytest.mark.parametrize(("case", "damage", "expected", "words"), SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_malformed_source_catalog(
    workspace: dict[str, Path], case: str, damage: Callable[[Path], None], expected: str, words: tuple[str, ...]
) -> None:
    repo, target, catalog = workspace["repo"], workspace["target"], workspace["catalog"]
    before_target, before_repo = tree_digest(target), tree_digest(repo)
    damage(catalog)
    result = run_cli("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, "--target-dir", target)
    if result.returncode == 0:
        assert expected != ERROR, f"{case}: accepted\n{result.stdout}"
        assert "Traceback" not in result.stderr
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        if expected == REPAIR:
            # The run's summary counts the repair. (Dropped rows leave no trace,
            # so a repair that drops rows may leave the content, and the
            # manifest of the export that wrote it, as they were.)
            assert "repairs: none" not in result.stdout and "repairs: " in result.stdout, result.stdout
        assert_intact(repo, target)
        # T and R agree on the snapshot the export reported.
        head_manifest = json.loads(git("show", "main:manifest.json", cwd=repo).stdout)
        assert head_manifest["snapshot_id"] == manifest["snapshot_id"]
    else:
        assert expected != REPAIR, f"{case}: refused ({result.stderr.strip()})"
        assert_one_line_error(result, words)
        # Byte for byte what it was: the verified snapshot of the fixture, intact by construction.
        assert tree_digest(target) == before_target
        assert tree_digest(repo) == before_repo
        git("fsck", "--full", "--strict", cwd=repo)


def test_target_path_that_is_a_file(workspace: dict[str, Path], tmp_path: Path) -> None:
    repo, catalog = workspace["repo"], workspace["catalog"]
    _sql("update songs set name = name || ' (changed)' where id = 1")(catalog)
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"precious")
    before_refs = refs(repo)
    result = run_cli("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, "--target-dir", blocker)
    assert_one_line_error(result)
    assert blocker.read_bytes() == b"precious"
    # R either kept its snapshot or gained the new one, whole: nothing half-done.
    run_ok("snapbuild", "verify", "--repo", repo)
    git("fsck", "--full", "--strict", cwd=repo)
    if refs(repo) != before_refs:
        assert "(changed)" in git("show", "main:catalog_read.db", cwd=repo).stdout


@pytest.mark.parametrize("kind", ["plain-directory", "regular-file", "work-tree-of-another-project"])
def test_repository_path_that_is_not_a_repository(workspace: dict[str, Path], tmp_path: Path, kind: str) -> None:
    target, catalog = workspace["target"], workspace["catalog"]
    _sql("update songs set name = name || ' (changed)' where id = 1")(catalog)
    bogus = tmp_path / "bogus"
    if kind == "plain-directory":
        bogus.mkdir()
        (bogus / "notes.txt").write_text("not a repository\n", encoding="utf-8")
        (bogus / "objects").mkdir()
    elif kind == "regular-file":
        bogus.write_text("not a repository\n", encoding="utf-8")
    else:
        bogus.mkdir()
        git("init", "-q", "-b", "main", cwd=bogus)
        (bogus / "code.py").write_text("print('hello')\n", encoding="utf-8")
        git("add", "code.py", cwd=bogus)
        git("-c", "user.name=x", "-c", "user.email=x@example.invalid", "commit", "-q", "-m", "code", cwd=bogus)
    before_bogus = tree_digest(bogus)
    before_target = tree_digest(target)
    result = run_cli("snapbuild", "export", "--db", catalog, "--commit", "--repo", bogus, "--target-dir", target)
    assert_one_line_error(result)
    # Refused before anything was touched: the other project's repository (its
    # .git/config included) and the target, which keeps the last good snapshot.
    assert tree_digest(bogus) == before_bogus
    assert tree_digest(target) == before_target
    run_ok("snapbuild", "verify", target)
