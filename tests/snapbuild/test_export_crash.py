"""A killed export (SIGKILL at any moment) never damages the last good snapshot."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from snapbuild.export import recover_target, run_export
from snapbuild.manifest import SnapshotManifest
from snapbuild.verify import verify_directory

from .conftest import GENERATED_AT, write_catalog


def medium_catalog(path: Path) -> Path:
    """~40k tracks and 200k playlist rows: an export long enough to be killed in the middle."""
    return write_catalog(
        path,
        """
        with recursive n(i) as (select 1 union all select i + 1 from n where i < 40000)
        insert into songs select i, 'p', i, '歌 ' || i, 'singer ' || (i % 97), 'flac', i, '{}' from n;
        with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000)
        insert into playlists select i, 'p', i, 'list ' || i, null, 'https://img/' || i, i, 100 from n;
        with recursive n(i) as (select 0 union all select i + 1 from n where i < 199999)
        insert into playlist_songs (playlist_id, song_id, position) select 1 + (i * 7919) % 2000, 1 + (i * 104729) % 40000, i from n;
        insert into storage_backends values (2, 's3', 'object_storage', null, '{"public_base_url": "https://cdn/m"}');
        insert into file_assets select id, id, 'q', 'flac', 1 from songs;
        insert into file_locations select id, id, 2, 'a b/' || id || ' #.flac', 'active', 1 from songs;
        """,
    )


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_good_pair(tmp_path: Path) -> None:
    target = tmp_path / "snapshot"
    old_source = write_catalog(tmp_path / "old.db", "insert into songs values (1, 'p', '1', 'old', null, null, null, null);")
    old = run_export(old_source, target, generated_at=GENERATED_AT).manifest
    source = medium_catalog(tmp_path / "new.db")
    started = time.monotonic()
    full = run_export(source, tmp_path / "reference", generated_at=GENERATED_AT).manifest
    duration = time.monotonic() - started
    outcomes = set()
    for fraction in (0.1, 0.5, 1.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--target-dir", str(target),
             "--generated-at", GENERATED_AT],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3 + duration * fraction)  # ~0.3 s of interpreter start-up first
        proc.kill()
        proc.wait()
        recover_target(target)  # what the next export does first
        manifest = verify_directory(target)
        assert manifest in (old, full)
        outcomes.add(manifest.snapshot_id)
        if manifest == full:  # start again from the old snapshot
            run_export(old_source, target, generated_at=GENERATED_AT)
    # Whatever was killed, a new export finishes the job and leaves no temporary file.
    assert run_export(source, target, generated_at=GENERATED_AT).manifest == full
    assert verify_directory(target) == full
    assert SnapshotManifest.read(target / "manifest.json") == full
    assert not [p for p in target.iterdir() if p.name.endswith((".tmp", ".pending", "-journal"))]
