"""The sample-catalog command."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .base import cli


@cli.command("sample-catalog")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tracks", type=click.IntRange(min=0), default=200, show_default=True, help="Number of songs.")
@click.option("--playlists", type=click.IntRange(min=0), default=20, show_default=True,
              help="Number of playlists (~50 rows each).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same catalog.")
@click.option("--media-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a 24-second tone at DIR/LOCATOR for every active nas-main file (about one "
                   "per three tracks): real FLAC (~70 KB) or MP3 (~25 KB) as the locator says, with the "
                   "'audio' extra installed (pip install 'snapbuild[audio]'); without it WAV files named "
                   ".wav. Existing files are kept.")
@click.option("--force", is_flag=True, help="Replace OUT even if it is not a sample catalog.")
def sample_catalog_command(
    out: Path, tracks: int, playlists: int, seed: int, media_dir: Path | None, force: bool
) -> None:
    """Write a synthetic catalog in the source schema for trying, testing and benchmarking.

    Mixed Chinese and Latin names, locators with spaces, '#', '%' and '?',
    files on the NAS, on object storage or both, inactive locations, toplists.
    The same seed always gives the same catalog. An existing sample catalog at
    OUT is replaced; any other existing file is refused unless --force.

    \b
    Example: snapbuild sample-catalog sample/catalogsync.db --media-dir sample/media
    """
    from ..sample import is_sample_catalog, write_sample_catalog

    if out.exists() and not force and not is_sample_catalog(out):
        raise UsageError(f"{out} exists and is not a sample catalog; pass --force to replace it")
    stats = write_sample_catalog(
        out, tracks=tracks, playlists=playlists, seed=seed, media_dir=media_dir, overwrite=True
    )
    click.echo(f"wrote {out}: {stats.summary()}")
    if media_dir is not None:
        from ..sample.media import media_as_wav

        if media_as_wav():
            click.echo(
                f"note: the media in {media_dir} are WAV files named .wav, not at the catalog's .flac and .mp3 "
                "locators (soundfile is not installed): pip install 'snapbuild[audio]' for real FLAC and MP3",
                err=True,
            )
