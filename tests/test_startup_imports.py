"""`archdsl check` and `archdsl summary` load only what they use: no NumPy,
networkx, Graphviz, onnx or torch (those belong to run/export/render), so a
CI lint step starts in a fraction of a second.  The check runs the command
in a fresh interpreter and reads ``sys.modules`` at exit."""

import json
import subprocess
import sys

import pytest
from conftest import MODELS, ROOT

DENYLIST = ("numpy", "networkx", "graphviz", "onnx", "onnxruntime", "torch",
            "hashlib",  # OpenSSL's library: only the SARIF and GitLab reports hash
            "asyncio")  # the language server's event loop (typing_extensions < 4.16 imported it with pydantic)

#: What importing pydantic (and its constrained types, which the op classes
#: use) loads by itself: not archdsl's to avoid.  pydantic 2.14's types
#: import `secrets`, and with it hashlib; 2.13's did not.
BASELINE = """
import json, sys
import pydantic, pydantic.types
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module")
def baseline():
    done = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout))

PROBE = """
import json, sys
from archdsl.cli import main
code = main(sys.argv[1:])
loaded = sorted(sys.modules)
print(json.dumps({"code": code, "loaded": loaded}))
"""


@pytest.mark.parametrize("command", [["check", str(MODELS / "resnet18.cnn")],
                                     ["summary", str(MODELS / "resnet18.cnn")],
                                     ["check", str(MODELS)]])
def test_check_and_summary_import_no_heavy_module(command, baseline):
    done = subprocess.run([sys.executable, "-c", PROBE, *command], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, 1), done.stderr
    heavy = [name for name in DENYLIST if name in report["loaded"] and name not in baseline]
    assert all(name in report["loaded"] for name in ("archdsl.cli", "pydantic")), "the probe sees dotted names"
    assert heavy == [], f"archdsl {command[0]} imported {heavy}"


@pytest.mark.parametrize("command", [["check", str(MODELS / "resnet18.cnn")],
                                     ["check", str(MODELS), "-j", "1"]])
def test_checking_in_one_process_starts_no_worker_machinery(command):
    """`check -j N` imports multiprocessing only when it starts workers."""
    done = subprocess.run([sys.executable, "-c", PROBE, *command], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert "multiprocessing" not in json.loads(done.stdout.strip().splitlines()[-1])["loaded"], done.stderr


def test_the_probe_sees_a_heavy_import():
    """The probe itself works: `run` does need NumPy."""
    done = subprocess.run([sys.executable, "-c", PROBE.replace("code = main(sys.argv[1:])",
                                                               "import archdsl.runtime; code = 0")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert "numpy" in json.loads(done.stdout.strip().splitlines()[-1])["loaded"]
