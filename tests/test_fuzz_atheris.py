"""A short coverage-guided campaign of tests/fuzz/pipeline.py in the suite:
about 45 seconds of atheris over the whole in-process pipeline, seeded (so
a failure can be replayed), with libFuzzer's limits standing for the
promises (docs/security.md): -timeout (a hang detector: 10 s here, because
the suite may share the machine with other work; the campaign command in
tests/fuzz/pipeline.py holds inputs to 2 s).  libFuzzer's memory limit is
off here: inside the suite it has reported out-of-memory on inputs that
replay at under 60 MB (an open question, see docs/security.md); memory
bounds are tested by tests/test_security.py under setrlimit and by the
documented campaign with -rss_limit_mb=1024.  It passes when no input broke the invariant: exit 0 and no
crash, timeout or out-of-memory file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_45_second_campaign_finds_nothing(tmp_path):
    corpus = tmp_path / "corpus"
    command = [sys.executable, str(ROOT / "tests" / "fuzz" / "pipeline.py"), "-max_total_time=45", "-timeout=10",
               "-rss_limit_mb=0", "-max_len=4096", "-seed=20240601", str(corpus)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    found = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "leak-")))
    assert result.returncode == 0 and not found, (found, result.stderr[-4000:])
    assert "Done" in result.stderr and any(corpus.iterdir())  # it ran, from the seeded corpus
