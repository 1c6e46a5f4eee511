"""Real snapshots for the catalog tests: a sample catalog with its media, exported by snapbuild into a directory."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from snapbuild.export import run_export
from snapbuild.sample import write_sample_catalog
from snapbuild.sample.rows import NAS_BACKEND_ID, NAS_BACKEND_NAME

NAS = NAS_BACKEND_NAME
GENERATED_AT = "2026-01-01T00:00:00Z"


@dataclass
class Published:
    """A sample source catalog, the NAS media its active files name, and the directory its snapshots go to."""

    source: Path
    media: Path
    directory: Path

    def export(self, directory: Path | None = None) -> str:
        """Export the source into the directory (or another); return the snapshot id now there."""
        return run_export(self.source, directory or self.directory, generated_at=GENERATED_AT).manifest.snapshot_id

    def set_status(self, locator: str, status: str) -> None:
        """Change the status of the NAS location of ``locator`` in the source catalog."""
        with sqlite3.connect(self.source) as conn:
            changed = conn.execute(
                "UPDATE file_locations SET status = ? WHERE locator = ? AND backend_id = ?",
                (status, locator, NAS_BACKEND_ID),
            ).rowcount
        conn.close()
        assert changed == 1, locator

    def listed(self, backend: str = NAS, directory: Path | None = None) -> list[str]:
        """The active locators of ``backend`` in the published snapshot, in key order."""
        db = (directory or self.directory) / "catalog_read.db"
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT locator FROM catalog_track_files WHERE backend_name = ? AND status = 'active' "
                "ORDER BY location_id",
                (backend,),
            ).fetchall()
        finally:
            conn.close()
        return [row[0] for row in rows]

    def manifest(self) -> dict[str, object]:
        """The published manifest."""
        return json.loads((self.directory / "manifest.json").read_text(encoding="utf-8"))


def snapshot_facts(directory: Path, backend: str = NAS) -> tuple[list[str], int, str]:
    """For the benchmarks: the backends a published snapshot names, its file rows, and a file of ``backend`` from the middle."""
    db = directory / "catalog_read.db"
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        backends = [row[0] for row in conn.execute("SELECT DISTINCT backend_name FROM catalog_track_files")]
        files = conn.execute("SELECT count(*) FROM catalog_track_files").fetchone()[0]
        (locator,) = conn.execute(
            "SELECT locator FROM catalog_track_files WHERE backend_name = ?1 ORDER BY location_id LIMIT 1 "
            "OFFSET (SELECT count(*) / 2 FROM catalog_track_files WHERE backend_name = ?1)",
            (backend,),
        ).fetchone()
    finally:
        conn.close()
    return backends, files, locator


def publish_sample(base: Path, *, tracks: int = 60) -> Published:
    """Write a sample catalog with media under ``base`` and export it to ``base/snapshot``."""
    published = Published(source=base / "catalog.db", media=base / "media", directory=base / "snapshot")
    write_sample_catalog(published.source, tracks=tracks, playlists=5, media_dir=published.media)
    published.export()
    return published
