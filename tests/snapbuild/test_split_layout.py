"""The split layout in the repository: the tree, the manifest, the crossing, and every command on both layouts."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from snapbuild.assemble import own_source
from snapbuild.cli import main
from snapbuild.errors import RepoError, VerifyError
from snapbuild.git.remote import gc, push
from snapbuild.pipeline import diff_revisions, verify_revision
from snapbuild.snapshots import snapshot_history

from .repo_support import fsck, git
from .split_support import PART, T1, T2, T3, change, commit, manifest_of, sample_catalog, sha256_of


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return sample_catalog(tmp_path / "catalogsync.db")


@pytest.fixture
def two_snapshots(tmp_path: Path, catalog: Path) -> Path:
    """A split repository holding a snapshot of the catalog and one after a 1% change."""
    repo = tmp_path / "snapshots.git"
    commit(catalog, repo, T1)
    change(catalog)
    commit(catalog, repo, T2)
    return repo


def clone_of(repo: Path, target: Path) -> Path:
    git("clone", "--quiet", str(repo), target)
    return target


def tree_files(repo: Path, rev: str = "main") -> dict[str, int]:
    """Path -> size of every file in the tree at ``rev`` (``git ls-tree -r -l``)."""
    listing = git("--git-dir", repo, "ls-tree", "-r", "-l", rev).stdout
    files = {}
    for line in listing.splitlines():
        meta, path = line.split("\t")
        files[path] = int(meta.split()[3])
    return files


def test_a_database_larger_than_the_part_size_is_committed_as_page_aligned_pieces(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    run = commit(catalog, repo, part_size=PART)
    exported = run.exported.manifest
    files = tree_files(repo)

    pieces = sorted(path for path in files if path.startswith("catalog_read.db.parts/"))
    assert set(files) - set(pieces) == {".gitattributes", ".gitignore", "README.md", "assemble.py", "manifest.json"}
    assert [Path(p).name for p in pieces] == [f"{i:05d}" for i in range(len(pieces))]
    sizes = [files[p] for p in pieces]
    assert len(pieces) > 5 and all(size == PART for size in sizes[:-1]) and 0 < sizes[-1] <= PART
    assert all(size % 4096 == 0 for size in sizes)

    committed = json.loads(git("--git-dir", repo, "show", "main:manifest.json").stdout)
    assert committed["part_size"] == PART
    assert [p["name"] for p in committed["parts"]] == [Path(p).name for p in pieces]
    whole = hashlib.sha256()
    for entry, path in zip(committed["parts"], pieces):
        data = git_bytes(repo, f"main:{path}")
        assert (entry["size"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        whole.update(data)
    assert whole.hexdigest() == committed["db_sha256"] == exported.db_sha256
    # Only the layout fields were added to what the export wrote.
    assert {k: v for k, v in committed.items() if k not in ("parts", "part_size")} == exported.to_dict()
    assert git_bytes(repo, "main:assemble.py") == own_source()
    assert "/catalog_read.db\n" in git("--git-dir", repo, "show", "main:.gitignore").stdout
    assert run.committed.pieces == len(pieces) and run.committed.largest_blob == PART
    fsck(repo)


def git_bytes(repo: Path, spec: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), "cat-file", "blob", spec], capture_output=True, check=True).stdout


def test_a_small_database_keeps_the_whole_tree_and_a_byte_identical_manifest(tmp_path: Path) -> None:
    catalog = sample_catalog(tmp_path / "small.db", tracks=150)
    repo = tmp_path / "snapshots.git"
    run = commit(catalog, repo, part_size=None)

    assert set(tree_files(repo)) == {".gitattributes", "README.md", "catalog_read.db", "manifest.json"}
    committed = git("--git-dir", repo, "show", "main:manifest.json").stdout
    assert committed == run.exported.manifest.to_json()
    assert "part" not in committed
    assert (run.committed.pieces, run.committed.part_size) == (0, 0)
    assert "pieces" not in git("--git-dir", repo, "log", "-1", "--format=%B").stdout


def test_same_catalog_time_and_author_give_the_same_split_commit_in_any_fresh_repository(
    tmp_path: Path, catalog: Path
) -> None:
    first = commit(catalog, tmp_path / "a.git").committed
    second = commit(catalog, tmp_path / "b.git").committed
    assert first.commit == second.commit and first.pieces > 1


def test_the_layout_crosses_once_and_never_flips_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "snapshots.git"
    catalog = sample_catalog(tmp_path / "small.db", tracks=150)
    big = sample_catalog(tmp_path / "big.db", tracks=3000)
    part = 128 * 1024
    whole = commit(catalog, repo, T1, part_size=part).committed
    crossed = commit(big, repo, T2, part_size=part).committed
    back = commit(catalog, repo, T3, part_size=part).committed  # smaller than the part size again

    assert (whole.pieces, crossed.pieces, back.pieces) == (0, 10, 1)
    assert "catalog_read.db" not in tree_files(repo) and "catalog_read.db.parts/00000" in tree_files(repo)
    message = git("--git-dir", repo, "log", "-1", "--format=%B", crossed.commit).stdout
    assert "Stored as 10 pieces of at most 128 KiB in catalog_read.db.parts/" in message
    assert "From this snapshot on, every snapshot of this repository is stored as pieces" in message
    later = git("--git-dir", repo, "log", "-1", "--format=%B", back.commit).stdout
    assert "Stored as 1 pieces" in later and "From this snapshot on" not in later

    # Without a part size the repository's own is kept; another one given is used and said.
    change(big)
    kept = commit(big, repo, "2026-01-04T00:00:00Z", part_size=None).committed
    assert kept.part_size == part
    change(big, seed=2)
    resized = commit(big, repo, "2026-01-05T00:00:00Z", part_size=PART).committed
    assert (resized.part_size, resized.pieces) == (PART, 20)
    assert "The part size changed from 128 KiB to 64 KiB." in git(
        "--git-dir", repo, "log", "-1", "--format=%B", resized.commit
    ).stdout

    history = snapshot_history(repo)
    assert [(e.pieces, e.part_size, e.parent_part_size) for e in reversed(history)] == [
        (0, 0, None), (10, part, 0), (1, part, part), (10, part, part), (20, PART, part)
    ]
    assert main(["log", "--repo", str(repo)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("[20 pieces of at most 64 KiB; part size was 128 KiB]")
    assert lines[3].endswith("[10 pieces of at most 128 KiB; split from here on]")
    assert "pieces" not in lines[4]
    assert main(["log", "--repo", str(repo), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert (entries[0]["layout"], entries[0]["pieces"], entries[0]["part_size"]) == ("split", 20, PART)
    assert entries[-1]["layout"] == "whole" and "pieces" not in entries[-1]
    fsck(repo)

    # A repository whose first snapshot is already split says so on that snapshot.
    fresh = tmp_path / "fresh.git"
    first = commit(big, fresh, T1, part_size=part).committed
    assert "Every snapshot of this repository is stored as pieces" in git(
        "--git-dir", fresh, "log", "-1", "--format=%B", first.commit
    ).stdout
    assert main(["log", "--repo", str(fresh)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("; split from here on]")


def test_verify_diff_and_extract_read_both_layouts_and_across_the_crossing(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    catalog = sample_catalog(tmp_path / "catalogsync.db", tracks=2000)
    commit(catalog, repo, T1, part_size=1024 * 1024)  # whole: the database is under 1 MiB
    change(catalog)
    commit(catalog, repo, T2, part_size=PART // 2)  # now larger than the part size: split
    change(catalog, seed=2)
    commit(catalog, repo, T3, part_size=None)

    layouts = [entry.pieces for entry in snapshot_history(repo)]
    assert layouts[-1] == 0 and layouts[0] > 1 and layouts[1] > 1
    for rev in ("HEAD", "HEAD~1", "HEAD~2"):
        verify_revision(repo, rev)
    across = diff_revisions(repo, "HEAD~2", "HEAD~1")
    assert across.tables["catalog_tracks"].changed > 0 and not across.is_empty
    assert main(["verify", "--repo", str(repo), "--rev", "HEAD~1"]) == 0
    assert main(["diff", "--repo", str(repo), "HEAD~2", "HEAD"]) == 0


def test_a_corrupt_piece_in_git_is_named(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    commit(catalog, repo)
    blob = git("--git-dir", repo, "rev-parse", "main:catalog_read.db.parts/00003").stdout.strip()
    loose = repo / "objects" / blob[:2] / blob[2:]
    loose.chmod(0o644)
    loose.write_bytes(loose.read_bytes()[:200])
    with pytest.raises(RepoError, match=r"piece catalog_read\.db\.parts/00003 at [0-9a-f]{12}: object .* is corrupt"):
        verify_revision(repo)


@pytest.mark.parametrize("tool", ["git", "dulwich"])
def test_gc_and_push_keep_every_piece_and_clones_assemble_the_same_database(
    tmp_path: Path, two_snapshots: Path, tool: str
) -> None:
    repo, remote = two_snapshots, tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    git_exe = shutil.which("git") if tool == "git" else None
    head = git("--git-dir", repo, "show", "main:manifest.json").stdout
    result = gc(repo, git=git_exe, lock_timeout=5)
    assert result.tool == tool
    verify_revision(repo, "HEAD~1")
    push(repo, str(remote), git=git_exe)
    fsck(remote)
    clone = clone_of(remote, tmp_path / "clone")
    assert main(["consumer-setup", str(clone)]) == 0
    assert sha256_of(clone / "catalog_read.db") == manifest_of(clone)["db_sha256"] == json.loads(head)["db_sha256"]
    verify_revision(clone)


def test_git_diff_and_log_p_name_changed_pieces_without_binary_noise(tmp_path: Path, two_snapshots: Path) -> None:
    clone = clone_of(two_snapshots, tmp_path / "clone")
    assert main(["consumer-setup", str(clone)]) == 0

    raw = subprocess.run(["git", "-C", str(clone), "log", "-p", "-1"], capture_output=True, check=True).stdout
    assert b"\0" not in raw and b"SQLite format 3" not in raw
    text = raw.decode("utf-8")
    assert "Binary files a/catalog_read.db.parts/00000 and b/catalog_read.db.parts/00000 differ" in text
    assert '-  "db_sha256": ' in text and '+  "db_sha256": ' in text  # manifest.json stays readable
    old, new = (json.loads(git("-C", clone, "show", f"{rev}:manifest.json").stdout) for rev in ("HEAD~1", "HEAD"))
    changed = [a["name"] for a, b in zip(old["parts"], new["parts"]) if a["sha256"] != b["sha256"]]
    assert text.count("Binary files ") == len(changed) + len(new["parts"]) - len(old["parts"])
    assert max(len(line) for line in text.splitlines()) < 120
    # The assembled file is ignored, and the row changes come from snapbuild diff.
    assert git("-C", clone, "status", "--porcelain").stdout == ""
    assert main(["diff", "--repo", str(clone)]) == 0


def test_textconv_reads_the_assembled_database_of_a_split_clone(
    tmp_path: Path, two_snapshots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = clone_of(two_snapshots, tmp_path / "clone")
    assert main(["consumer-setup", str(clone)]) == 0
    capsys.readouterr()
    assert main(["textconv", str(clone / "catalog_read.db")]) == 0
    assert "catalog_tracks[song_id=1]" in capsys.readouterr().out


def test_verify_of_a_clone_checks_its_checkout(tmp_path: Path, two_snapshots: Path) -> None:
    clone = clone_of(two_snapshots, tmp_path / "clone")
    verify_revision(clone)  # not assembled yet: the pieces are checked
    (clone / "catalog_read.db").write_bytes(b"stale")
    with pytest.raises(VerifyError, match="is not this snapshot's database: assemble it"):
        verify_revision(clone)
    verify_revision(clone, "HEAD~1")  # another revision: the checkout is not compared
    (clone / "catalog_read.db").unlink()
    (clone / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(VerifyError, match="manifest.json in the work tree .* is not the committed one"):
        verify_revision(clone)
