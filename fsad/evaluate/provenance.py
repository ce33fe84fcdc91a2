"""What a result row records about the code that computed it: git commit and fsad version."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fsad import __version__

# what determines results: a change here (not in results/ or docs) makes a run "+dirty"
_CODE_PATHS = (":(top)fsad", ":(top)configs", ":(top)pyproject.toml")


def git_commit(where: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the fsad sources, or ``"unknown"`` outside git.

    ``+dirty`` is appended when the code that produces results (``fsad/``, ``configs/``,
    ``pyproject.toml``) has uncommitted changes; result files being written do not count.
    """
    here = where or Path(__file__).resolve().parent
    try:
        head = _git(here, "rev-parse", "--short", "HEAD", timeout=10)
        dirty = _git(
            here, "status", "--porcelain", "--untracked-files=no", "--", *_CODE_PATHS, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head or "unknown"


def _git(here: Path, *args: str, timeout: float) -> str:
    """Stripped stdout of ``git -C here ARGS`` (raises on failure or timeout)."""
    return subprocess.run(
        ["git", "-C", str(here), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout.strip()


def run_context() -> dict[str, str]:
    """The provenance columns every row of one run shares: ``git_commit``, ``fsad_version``."""
    return {"git_commit": git_commit(), "fsad_version": __version__}
