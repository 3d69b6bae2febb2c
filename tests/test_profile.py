"""The runtime's profiler (``CompiledModel.profile``, ``archdsl run
--profile``): every node appears once, in execution order, with a
non-negative time; folded and fused nodes name the node that does their
work and take no time; the per-kind totals are the sums of the node times;
the kernel times fit inside the measured forward pass; the profiled output
is the forward pass's.  No speed is asserted (the machine is shared)."""

from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.cli import main
from archdsl.runtime.profile import NodeTime, Profile

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

SOURCE = """
model Block {
    input image: [3, 16, 16]
    x = image -> stem: conv2d(8, 3, padding=1) -> bn: batchnorm2d -> silu
    y = x -> conv: conv2d(8, 3, padding=1) -> bn2: batchnorm2d
    z = add(x, y) -> relu -> pool: global_avgpool -> gate: sigmoid
    out = mul(x, z) -> flatten -> fc: linear(4)
    output out
}
"""


@pytest.fixture(scope="module")
def net():
    return archdsl.compile(archdsl.loads(SOURCE).model(), seed=0)


def test_every_node_once_in_execution_order(net):
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16), dtype=np.float32)
    profile = net.profile(x)
    assert [row.node for row in profile.nodes] == [step.node for step in net.plan.steps]
    assert set(row.node for row in profile.nodes) == set(net.plan.model.nodes) - {"image"}
    assert all(row.seconds >= 0 for row in profile.nodes)
    kinds = {row.node: row.kind for row in profile.nodes}
    assert kinds["stem"] == "conv2d" and kinds["bn"] == "batchnorm2d" and kinds["gate"] == "sigmoid"


def test_folded_and_fused_nodes_name_the_node_doing_their_work(net):
    profile = net.profile(np.zeros((1, 3, 16, 16), np.float32))
    done_by = {row.node: row.done_by for row in profile.nodes}
    seconds = {row.node: row.seconds for row in profile.nodes}
    # bn folds into stem, the silu is applied by stem; bn2 folds into conv,
    # which adds x (the residual) and applies the relu.
    assert done_by["bn"] == "stem" and done_by["silu_1"] == "stem"
    assert done_by["bn2"] == "conv" and done_by["add_1"] == "conv" and done_by["relu_1"] == "conv"
    assert done_by["stem"] is None and done_by["fc"] is None
    assert all(seconds[node] == 0 for node, by in done_by.items() if by is not None)


def test_profiled_output_is_the_forward_output(net):
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16), dtype=np.float32)
    np.testing.assert_array_equal(net.profile(x).output, net(x))


def test_totals_add_up(net):
    x = np.random.default_rng(2).standard_normal((4, 3, 16, 16), dtype=np.float32)
    net(x)  # warm-up
    profile = net.profile(x)
    kinds = profile.by_kind()
    assert sum(kind.seconds for kind in kinds) == pytest.approx(profile.kernel_seconds)
    assert sum(kind.nodes for kind in kinds) == len(profile.nodes)
    assert sum(kind.calls for kind in kinds) == sum(row.done_by is None for row in profile.nodes)
    assert [kind.seconds for kind in kinds] == sorted((kind.seconds for kind in kinds), reverse=True)
    # The kernels run inside the measured pass: their sum cannot exceed it.
    assert 0 < profile.kernel_seconds <= profile.total


def test_table_lists_every_kind_and_node():
    rows = (NodeTime("a", "conv2d", 0.003), NodeTime("b", "batchnorm2d", 0.0, "a"), NodeTime("c", "relu", 0.001))
    profile = Profile(rows, 0.005, None)
    table = profile.table(None)
    lines = table.splitlines()
    assert lines[1].split()[:5] == ["conv2d", "3.000", "60.0%", "1", "1"]
    assert lines[2].split()[:5] == ["relu", "1.000", "20.0%", "1", "1"]
    assert lines[3].split()[:5] == ["batchnorm2d", "0.000", "0.0%", "0", "1"]
    for node in "abc":
        assert any(line.split()[:1] == [node] for line in lines)
    assert "(done by a)" in table
    assert lines[-1] == "forward 5.000 ms: kernels 4.000 ms, other 1.000 ms"
    short = profile.table(1)
    assert "... 2 more nodes, 1.000 ms" in short


def test_cli_run_profile(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    assert main(["run", str(MODELS / "lenet5.cnn"), "--input", str(tmp_path / "x.npy"), "-o", str(out),
                 "--profile", "--profile-runs", "2", "-q"]) == 0
    printed = capsys.readouterr().out
    net = archdsl.compile(archdsl.load(MODELS / "lenet5.cnn").model(), seed=0)
    for node in net.plan.model.nodes:
        if node not in net.INPUTS:
            assert any(line.split()[:1] == [node] for line in printed.splitlines()), node
    assert "fastest of 2 profiled pass(es)" in printed
    assert printed.splitlines()[-1].startswith("forward ")
    np.testing.assert_allclose(np.load(out), net(x), rtol=1e-6)


def test_cli_profile_options_are_checked(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 32, 32), np.float32))
    with pytest.raises(SystemExit) as error:
        main(["run", str(MODELS / "lenet5.cnn"), "--input", str(tmp_path / "x.npy"), "-o",
              str(tmp_path / "y.npy"), "--profile", "--profile-runs", "0"])
    assert error.value.code == 2
    assert "positive integer" in capsys.readouterr().err
