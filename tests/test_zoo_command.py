"""`archdsl zoo`: the shipped models listed with their figures, and copied
out with imports that read the standard block library (std/).

The figures listed must be the golden ones of tests/test_zoo.py (PyTorch and
torchvision references, see that file's header), and the analysis's.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import MODELS, run_cli
from test_zoo import ZOO

import archdsl
from archdsl.model_zoo import describe, portable_text


def test_zoo_lists_every_shipped_model_with_its_golden_figures():
    result = run_cli("zoo", "--format", "json")
    assert result.returncode == 0, result.stderr
    listed = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert set(listed) == {p.stem for p in MODELS.glob("*.cnn")}
    for golden in ZOO:
        row = listed[Path(golden.file).stem]
        assert row["params"] == golden.params, golden.file
        if golden.macs is not None and golden.exact_macs:
            assert row["macs"] == golden.macs, golden.file
    assert listed["resnet18"]["input"] == [3, 224, 224]
    assert listed["resnet18"]["title"] == "ResNet-18"


def test_zoo_text_is_one_line_per_model():
    result = run_cli("zoo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + len(list(MODELS.glob("*.cnn")))  # a header, then one line each
    resnet18 = next(line for line in lines if line.startswith("resnet18 "))
    assert resnet18.split()[:6] == ["resnet18", "[3,", "224,", "224]", "11,689,512", "1,814,073,344"]


def test_a_model_without_expect_lines_is_analysed(tmp_path):
    # LeNet-5's figures (61,706 parameters, 416,520 MACs: tests/test_zoo.py)
    # with its expect lines removed must come from the analysis.
    text = (MODELS / "lenet5.cnn").read_text(encoding="utf-8")
    bare = "\n".join(line for line in text.splitlines() if not line.strip().startswith("expect"))
    path = tmp_path / "lenet.cnn"
    path.write_text(bare, encoding="utf-8")
    found = describe("lenet", path)
    assert (found.params, found.macs, found.figures_from) == (61_706, 416_520, "analysis")


def test_portable_text_rewrites_only_block_imports():
    text = 'import "blocks/resnet.cnn"\n  import "blocks/a.cnn"  # x\nimport "other/blocks/b.cnn"\n# import "blocks/c"\n'
    assert portable_text(text) == ('import "std/resnet.cnn"\n  import "std/a.cnn"  # x\n'
                                   'import "other/blocks/b.cnn"\n# import "blocks/c"\n')


def test_copy_writes_a_model_that_works_outside_the_repository(tmp_path):
    result = run_cli("zoo", "copy", "resnet18", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "resnet18.cnn"
    text = copied.read_text(encoding="utf-8")
    assert 'import "std/resnet.cnn"' in text and '"blocks/' not in text
    report = archdsl.check(copied)
    assert report.ok, report.diagnostics
    model = archdsl.load(copied).model()
    totals = archdsl.analyze(model).totals
    assert (totals.params, totals.macs) == (11_689_512, 1_814_073_344)


def test_copy_into_a_folder_and_with_the_suffix(tmp_path):
    result = run_cli("zoo", "copy", "unet.cnn", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'import "std/unet.cnn"' in (tmp_path / "unet.cnn").read_text(encoding="utf-8")


def test_copy_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "mine.cnn"
    target.write_text("keep me", encoding="utf-8")
    result = run_cli("zoo", "copy", "lenet5", str(target))
    assert result.returncode == 2
    assert result.stderr == f"archdsl: error: {target} exists; pass --force to replace it\n"
    assert target.read_text(encoding="utf-8") == "keep me"
    result = run_cli("zoo", "copy", "lenet5", str(target), "--force")
    assert result.returncode == 0, result.stderr
    assert target.read_text(encoding="utf-8") == (MODELS / "lenet5.cnn").read_text(encoding="utf-8")


def test_copy_refuses_an_unknown_name_with_a_suggestion(tmp_path):
    result = run_cli("zoo", "copy", "resnet81", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "archdsl: error: no zoo model 'resnet81'; did you mean 'resnet18'?\n"
    result = run_cli("zoo", "copy", "transformer", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "archdsl: error: no zoo model 'transformer'; 'archdsl zoo' lists them\n"
    assert list(tmp_path.iterdir()) == []
