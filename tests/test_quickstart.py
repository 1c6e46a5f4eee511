"""The README's Quick start works where a newcomer types it, and .ci/run runs exactly its lines.

Stock Debian and Ubuntu mark their python3 as externally managed (PEP 668):
``pip install`` outside a virtual environment stops there. So the first
command must create a virtual environment and use it before it installs
anything; the second runs in the same terminal, inside it. ``.ci/run``
runs the two lines as they are, on a fresh machine.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI_RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match is not None, f"README has no '## {title}' section"
    return match.group(1)


def _blocks(text: str, language: str) -> list[list[str]]:
    return [
        [line for line in body.splitlines() if line.strip()]
        for body in re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)
    ]


def quick_start() -> list[str]:
    (block,) = _blocks(_section("Quick start"), "sh")
    return block


def test_the_quick_start_is_two_commands() -> None:
    assert len(quick_start()) == 2


def test_the_first_command_installs_into_a_virtual_environment_it_creates_and_activates() -> None:
    main, tests = quick_start()
    steps = [step.strip() for step in main.split("&&")]
    venv = next(i for i, step in enumerate(steps) if re.fullmatch(r"python3 -m venv \S+", step))
    activate = next(i for i, step in enumerate(steps) if re.fullmatch(r"\. \S+/bin/activate", step))
    installs = [i for i, step in enumerate(steps) if " pip install " in f" {step} "]
    assert installs and venv < activate < min(installs), steps
    assert any(step.startswith("snapbuild export ") and "--commit" in step for step in steps)
    assert any(step.startswith("snapbuild sample-catalog ") for step in steps)
    # The second command runs in the same terminal: inside the environment, with its python.
    assert "pip install" in tests and "pytest" in tests
    assert "python3 -m pip" not in tests and "sudo" not in main + tests


def test_the_powershell_equivalent_is_there() -> None:
    (block,) = _blocks(_section("Quick start"), "powershell")
    assert len(block) == 2
    text = "\n".join(block)
    for needed in ("-m venv .venv", r".venv\Scripts\Activate.ps1", "pip install -e", "snapbuild sample-catalog",
                   "snapbuild export", "--commit", "pytest"):
        assert needed in text, needed


def test_ci_runs_exactly_the_two_lines() -> None:
    main, tests = quick_start()
    assert f"main_cmd={shlex.quote(main)}" in CI_RUN or f'main_cmd="{main}"' in CI_RUN
    assert f"test_cmd={shlex.quote(tests)}" in CI_RUN or f'test_cmd="{tests}"' in CI_RUN
    assert re.search(r'^eval "\$main_cmd"$', CI_RUN, re.M) and re.search(r'^eval "\$test_cmd"$', CI_RUN, re.M)
    assert "python3-venv" in CI_RUN  # a fresh Debian has no venv module without it


def _written_paths(block: list[str]) -> list[str]:
    """The paths a README example writes: redirections and the options that name files it creates."""
    text = " ".join(line.rstrip("\\") for line in block)
    files = re.findall(r">\s*(\S+)", text) + re.findall(r"(?:--secret-file|sample-catalog)\s+(\S+)", text)
    # Directories end in "/", so that a pattern such as "snapshots.git/" can match them before they exist.
    directories = re.findall(r"--(?:workdir|repo|target-dir|media-dir)\s+(\S+)", text)
    paths = files + [directory.rstrip("/\\") + "/" for directory in directories]
    return sorted({path for path in paths if not path.startswith("&")})


def test_what_the_examples_write_stays_out_of_git() -> None:
    """Secrets, clones and generated files are written where `git add .` does not pick them up."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git CLI and a git checkout")
    blocks = _blocks(README, "sh") + _blocks(README, "powershell")
    paths = sorted({path.replace("\\", "/") for block in blocks for path in _written_paths(block)})
    assert "sample/origin-keys.txt" in paths or any("origin-keys" in path for path in paths)
    for path in paths:
        if path.startswith(("/", "~", "..")):
            continue  # outside the checkout
        result = subprocess.run([git, "-C", str(ROOT), "check-ignore", "-q", "--no-index", path], check=False)
        assert result.returncode == 0, f"the README example writes {path}, which git would pick up"
