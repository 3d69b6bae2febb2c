"""The wheel, installed in a fresh virtual environment, works outside the
repository: the shipped zoo is found (`archdsl zoo`), a copied zoo model
reads its blocks from std/, and so does a new file that imports
"std/resnet.cnn".

The wheel is built by pip from this checkout (hatchling, the build backend,
is used in place when it is installed, else pip fetches it from the package
index into an isolated build environment); the venv sees the system's site
packages so that pydantic, lark, networkx and numpy need no network.  The
figures are ResNet-18's (tests/test_zoo.py: torchvision's 11,689,512
parameters, 1,814,073,344 MACs at 224x224).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import ROOT

#: A new model outside the repository, built from the standard block library.
TINY_RESNET = """\
import "std/resnet.cnn"

model Tiny {
    input image: [3, 32, 32]
    logits = image
        -> conv1: conv2d(16, 3, padding=1, bias=false) -> bn1: batchnorm2d -> relu
        -> layer1: repeat 2 { BasicBlock(16) }
        -> avgpool: global_avgpool -> flatten
        -> fc: linear(10)
    output logits
}
"""


def _clean_env() -> dict[str, str]:
    """The environment without PYTHONPATH (which would import this checkout
    instead of the installed wheel) and without colour."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["NO_COLOR"] = "1"
    return env


def _run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv with the wheel of this checkout installed."""
    wheels = tmp_path_factory.mktemp("wheels")
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), str(ROOT)],
                 cwd=wheels)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("archdsl-*.whl")
    environment = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(system_site_packages=True, with_pip=True, symlinks=os.name != "nt").create(environment)
    bin_folder = environment / ("Scripts" if os.name == "nt" else "bin")
    python = bin_folder / "python"
    # The venv's own pip (ensurepip's bundled copy), so that the `archdsl`
    # script it writes runs the venv's interpreter; no index: no network.
    done = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=environment)
    assert done.returncode == 0, done.stdout + done.stderr
    where = _run([str(python), "-c", "import archdsl; print(archdsl.__file__)"], cwd=environment)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(environment.resolve()), where.stdout
    return bin_folder


def test_the_installed_wheel_lists_copies_and_analyses_the_zoo(installed, tmp_path):
    archdsl = str(installed / "archdsl")
    listed = _run([archdsl, "zoo"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:1] == ["resnet18"] and "11,689,512" in line and "1,814,073,344" in line
               for line in listed.stdout.splitlines()), listed.stdout

    copied = _run([archdsl, "zoo", "copy", "resnet18"], cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    summary = _run([archdsl, "summary", "resnet18.cnn"], cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert "Trainable parameters           11,689,512" in summary.stdout
    assert "MACs                           1,814,073,344 (1.81 G)" in summary.stdout
    checked = _run([archdsl, "check", "resnet18.cnn"], cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    (tmp_path / "tiny.cnn").write_text(TINY_RESNET, encoding="utf-8")
    tiny = _run([archdsl, "summary", "tiny.cnn"], cwd=tmp_path)
    assert tiny.returncode == 0, tiny.stderr
    # By hand: conv1 3·16·9 = 432, bn1 2·16 = 32, each of the two BasicBlock(16)
    # two 16·16·9 convs and two batchnorms: 2·2304 + 2·32 = 4672, fc 16·10 + 10 = 170;
    # MACs: conv1 32·32·16·27 = 442,368, four 16·16·9·32·32 convs 9,437,184, fc 160.
    assert "Trainable parameters           9,978" in tiny.stdout
    assert "MACs                           9,879,712 (9.88 M)" in tiny.stdout
