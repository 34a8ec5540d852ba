"""Run the real `turnout` command as a subprocess, the way a user does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def turnout_exe() -> list[str]:
    exe = Path(sys.executable).parent / "turnout"
    return [str(exe)] if exe.exists() else [shutil.which("turnout") or "turnout"]


def run(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*turnout_exe(), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "160"},
        timeout=timeout,
    )
