"""consumer-setup's hooks: real git clone, pull, checkout and rebase assemble catalog_read.db, or keep the old one and say why."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.consumer import consumer_setup
from snapbuild.errors import RepoError
from snapbuild.hooks import ASSEMBLER_HOOK, HOOK_NAMES, MARKER
from snapbuild.snapshots import commit_snapshot

from .repo_support import git, make_snapshot
from .split_support import T1, T2, T3, change, commit, manifest_of, run_snapbuild, sample_catalog, sha256_of


def assembled(clone: Path) -> bool:
    """The clone's catalog_read.db is the database its checked-out manifest names."""
    db = clone / "catalog_read.db"
    return db.exists() and sha256_of(db) == manifest_of(clone)["db_sha256"]


def clone_with_hooks(repo: Path, target: Path, interpreter: str | None) -> Path:
    """Clone ``repo`` and set it up through the library, the hooks trying ``interpreter`` first."""
    git("clone", "--quiet", str(repo), target)
    consumer_setup(target, "snapbuild textconv", git=shutil.which("git") or "git", interpreter=interpreter)
    return target


@pytest.fixture
def publisher(tmp_path: Path) -> tuple[Path, Path]:
    """A catalog and its split snapshot repository with one snapshot."""
    catalog, repo = sample_catalog(tmp_path / "catalogsync.db"), tmp_path / "snapshots.git"
    commit(catalog, repo, T1)
    return catalog, repo


def test_consumer_setup_installs_the_hooks_and_assembles_at_once(
    publisher: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, repo = publisher
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    assert not (clone / "catalog_read.db").exists()

    assert main(["consumer-setup", str(clone)]) == 0
    out = capsys.readouterr().out
    assert "installed the hooks post-checkout, post-merge, post-rewrite in" in out
    assert "assembled" in out and "from 20 pieces" in out
    assert assembled(clone)
    for name in HOOK_NAMES:
        hook = clone / ".git" / "hooks" / name
        assert MARKER in hook.read_text(encoding="utf-8") and b"\r" not in hook.read_bytes()
        if os.name != "nt":
            assert hook.stat().st_mode & stat.S_IXUSR
        assert Path(sys.executable).as_posix() in hook.read_text(encoding="utf-8")
    assert (clone / ".git" / "hooks" / ASSEMBLER_HOOK).read_bytes() == (clone / "assemble.py").read_bytes()
    assert git("-C", clone, "status", "--porcelain").stdout == ""
    # Running it again updates snapbuild's own hooks.
    assert main(["consumer-setup", str(clone)]) == 0


def test_hooks_assemble_after_pull_checkout_and_pull_rebase(publisher: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, repo = publisher
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    assert main(["consumer-setup", str(clone)]) == 0
    first = sha256_of(clone / "catalog_read.db")

    change(catalog)
    second = commit(catalog, repo, T2).exported.manifest
    pulled = git("-C", clone, "pull", "--ff-only")
    assert "assembled catalog_read.db from 20 pieces" in pulled.stdout + pulled.stderr
    assert assembled(clone) and sha256_of(clone / "catalog_read.db") == second.db_sha256

    git("-C", clone, "checkout", "--quiet", "HEAD~1")
    assert sha256_of(clone / "catalog_read.db") == first
    git("-C", clone, "checkout", "--quiet", "main")
    assert sha256_of(clone / "catalog_read.db") == second.db_sha256

    change(catalog, seed=2)
    third = commit(catalog, repo, T3).exported.manifest
    git("-C", clone, "pull", "--rebase", "--quiet")
    assert sha256_of(clone / "catalog_read.db") == third.db_sha256
    assert git("-C", clone, "status", "--porcelain").stdout == ""
    assert run_snapbuild("verify", "--repo", clone).returncode == 0


def test_post_rewrite_alone_assembles_after_a_real_rebase(publisher: tuple[Path, Path], tmp_path: Path) -> None:
    """A consumer with a commit of its own: 'git pull --rebase' rewrites it, and post-rewrite assembles."""
    catalog, repo = publisher
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    assert main(["consumer-setup", str(clone)]) == 0
    for name in ("post-checkout", "post-merge"):  # only post-rewrite is left to do it
        (clone / ".git" / "hooks" / name).unlink()
    (clone / "notes.txt").write_text("the consumer's own file\n", encoding="utf-8")
    git("-C", clone, "add", "notes.txt")
    git("-C", clone, "-c", "user.name=Consumer", "-c", "user.email=consumer@example.org", "commit", "--quiet", "-m", "notes")

    change(catalog)
    new = commit(catalog, repo, T2).exported.manifest
    rebased = git("-C", clone, "-c", "user.name=Consumer", "-c", "user.email=consumer@example.org",
                  "pull", "--rebase")
    assert "assembled catalog_read.db from 20 pieces" in rebased.stdout + rebased.stderr
    assert sha256_of(clone / "catalog_read.db") == new.db_sha256
    assert git("-C", clone, "log", "--format=%s", "-1").stdout.strip() == "notes"  # really rebased


def test_a_template_makes_git_clone_assemble_at_its_first_checkout(
    publisher: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, repo = publisher
    template = tmp_path / "template"
    assert main(["consumer-setup", "--template", str(template)]) == 0
    assert f"git clone --template {template} URL DIR" in capsys.readouterr().out
    clone = tmp_path / "clone"
    cloned = git("clone", "--template", str(template), str(repo), clone)
    assert "assembled" in cloned.stdout + cloned.stderr
    assert assembled(clone)
    assert main(["consumer-setup", str(clone), "--template", str(template)]) == 2
    assert main(["consumer-setup", ".", "--template", str(template)]) == 2  # "." is a clone too


@pytest.mark.skipif(os.name == "nt", reason="links an interpreter into a directory (needs symlink rights on Windows)")
def test_hooks_find_python_on_path_when_the_recorded_one_is_gone(
    publisher: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, repo = publisher
    clone = clone_with_hooks(repo, tmp_path / "clone", "/nowhere/python3")
    # Only a python3 that is not the one named at setup: a directory with a link to this interpreter.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{Path(shutil.which('git') or 'git').parent}")
    change(catalog)
    second = commit(catalog, repo, T2).exported.manifest
    git("-C", clone, "pull", "--ff-only", "--quiet")
    assert sha256_of(clone / "catalog_read.db") == second.db_sha256


@pytest.mark.skipif(os.name == "nt", reason="needs a PATH without any Python")
def test_without_any_python_the_hook_says_so_and_keeps_the_old_database(
    publisher: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, repo = publisher
    clone = clone_with_hooks(repo, tmp_path / "clone", None)
    before = (clone / "catalog_read.db").read_bytes()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git") or "git")
    monkeypatch.setenv("PATH", str(bin_dir))
    change(catalog)
    commit(catalog, repo, T2)
    pulled = git("-C", clone, "pull", "--ff-only", "--quiet")
    assert "no Python 3.8 or later found; catalog_read.db was not assembled" in pulled.stderr
    assert (clone / "catalog_read.db").read_bytes() == before


def test_a_damaged_piece_makes_the_hook_keep_the_old_database_and_say_so(tmp_path: Path) -> None:
    repo, clone = tmp_path / "snapshots.git", tmp_path / "clone"
    part = 16 * 1024
    commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=4000), part_size=part)
    git("clone", "--quiet", str(repo), clone)
    assert main(["consumer-setup", str(clone)]) == 0
    before = (clone / "catalog_read.db").read_bytes()
    commit_snapshot(repo, make_snapshot(tmp_path / "b", tracks=4001, generated_at=T2), part_size=part)
    piece = "catalog_read.db.parts/00003"
    assert git("--git-dir", repo, "diff", "--quiet", "main~1", "main", "--", piece, check=False).returncode == 0

    damaged = clone / piece
    damaged.write_bytes(damaged.read_bytes()[:100])  # a local change git keeps through the pull
    pulled = git("-C", clone, "pull", "--ff-only", "--quiet")
    assert f"piece {piece} is truncated: 100 of {part} bytes" in pulled.stderr
    assert "catalog_read.db was left as it was" in pulled.stderr
    assert (clone / "catalog_read.db").read_bytes() == before


def test_a_hook_snapbuild_did_not_write_is_left_alone(publisher: tuple[Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, repo = publisher
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    own = clone / ".git" / "hooks" / "post-merge"
    own.write_text("#!/bin/sh\necho mine\n", encoding="utf-8")
    assert main(["consumer-setup", str(clone)]) == 1
    err = capsys.readouterr().err
    assert "post-merge is a hook snapbuild did not write; move it aside" in err and err.count("\n") == 1
    assert own.read_text(encoding="utf-8") == "#!/bin/sh\necho mine\n"
    assert not (clone / ".git" / "hooks" / "post-checkout").exists()
    with pytest.raises(RepoError):
        consumer_setup(clone, "snapbuild textconv", git=shutil.which("git") or "git")


def test_hooks_go_where_core_hooks_path_says(publisher: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, repo = publisher
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    git("-C", clone, "config", "core.hooksPath", "my-hooks")
    assert main(["consumer-setup", str(clone)]) == 0
    assert (clone / "my-hooks" / "post-merge").exists()
    change(catalog)
    second = commit(catalog, repo, T2).exported.manifest
    git("-C", clone, "pull", "--ff-only", "--quiet")
    assert sha256_of(clone / "catalog_read.db") == second.db_sha256


def test_a_bare_repository_gets_the_driver_but_no_hooks(publisher: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, repo = publisher
    assert main(["consumer-setup", str(repo)]) == 0
    assert "hooks" not in capsys.readouterr().out
    assert not any(
        (repo / "hooks" / name).exists() and MARKER in (repo / "hooks" / name).read_text() for name in HOOK_NAMES
    )


def test_the_documented_shallow_update_runs_the_hooks(publisher: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, repo = publisher
    template = tmp_path / "template"
    assert main(["consumer-setup", "--template", str(template)]) == 0
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--depth", "1", "--template", str(template), repo.as_uri(), clone)
    assert assembled(clone)
    change(catalog)
    second = commit(catalog, repo, T2).exported.manifest
    # docs/consumers.md: "later, stay shallow"
    git("-C", clone, "fetch", "--quiet", "--depth", "1", "origin", "main")
    git("-C", clone, "checkout", "--quiet", "--force", "-B", "main", "origin/main")
    assert sha256_of(clone / "catalog_read.db") == second.db_sha256


def test_a_clone_follows_the_crossing_both_ways(tmp_path: Path) -> None:
    repo, part = tmp_path / "snapshots.git", 128 * 1024
    small, big = sample_catalog(tmp_path / "small.db", tracks=150), sample_catalog(tmp_path / "big.db", tracks=3000)
    whole = commit(small, repo, T1, part_size=part).exported.manifest
    clone = tmp_path / "clone"
    git("clone", "--quiet", str(repo), clone)
    assert main(["consumer-setup", str(clone)]) == 0

    split = commit(big, repo, T2, part_size=part).exported.manifest
    git("-C", clone, "pull", "--ff-only", "--quiet")  # catalog_read.db leaves git; the hook assembles it
    assert sha256_of(clone / "catalog_read.db") == split.db_sha256
    assert git("-C", clone, "status", "--porcelain").stdout == ""
    git("-C", clone, "checkout", "--quiet", "HEAD~1")  # the assembled file gives way to the committed one
    assert sha256_of(clone / "catalog_read.db") == whole.db_sha256
    git("-C", clone, "checkout", "--quiet", "main")
    assert sha256_of(clone / "catalog_read.db") == split.db_sha256
    assert git("-C", clone, "status", "--porcelain").stdout == ""
