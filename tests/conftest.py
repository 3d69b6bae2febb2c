import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


def run_cli(*args: str, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Runs ``python -m archdsl`` as a user would, without colour."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "archdsl", *args],
        cwd=cwd or ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True)
def one_runtime_thread():
    """Every test runs forward passes on one thread, whatever the machine's
    cores: a batch cut into parts would show the kernels fewer images
    (another Winograd decision, say) and make a pass's schedule depend on
    timing.  tests/test_schedule.py and tests/test_threads.py set threads
    themselves."""
    from archdsl.runtime import get_num_threads, set_num_threads

    previous = get_num_threads()
    set_num_threads(1)
    yield
    set_num_threads(previous)
