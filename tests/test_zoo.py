"""The model zoo: every model in models/ loads cleanly and reproduces its
golden figures (trainable parameters, MACs, output shape and, where a
PyTorch reference exists, the state_dict key set).

The figures were derived once, outside this repository, with PyTorch 2.14.1
and torchvision 0.29.1 (torch is *not* needed to run these tests):

* params: ``sum(p.numel() for p in model.parameters() if p.requires_grad)``;
* MACs: forward hooks at batch 1 on Conv/Linear layers, counting
  ``out.numel() · C_in/groups · prod(kernel)`` for a convolution,
  ``in_features · out_features`` for a linear layer (times the positions,
  ``out.numel() · in_features``, for one over an ``[H, W, C]`` map, as
  ConvNeXt's pointwise linears) and
  ``in.numel() · C_out/groups · prod(kernel)`` for a transposed
  convolution: the convention of archdsl's MACs, so they agree exactly;
* state_dict: the number of entries of ``model.state_dict()`` and a
  fingerprint (sha256 of the sorted "key shape" lines, see
  :func:`fingerprint`) of its keys and shapes, i.e. parameters and
  batch-norm buffers, which our node names reproduce exactly.

For models torchvision lacks (AlexNet 2012, the U-Nets, M5, C3D) the reference
is a PyTorch rebuild of the same layer list with the same module names;
ConvNeXt-Tiny's exact figures come from a plain-PyTorch rebuild of
torchvision's module tree (torch 2.13), whose parameter count is
torchvision's published one.
Each model's header states its figures and their source; the rows below
repeat them, and a test checks that the header and the row agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pytest
from conftest import MODELS, run_cli

import archdsl
from archdsl.ops.base import state_key

TV = "torchvision 0.29.1"
#: RegNet and MobileNetV3 were derived later, the same way, with PyTorch 2.13.0 and torchvision 0.28.0.
TV_28 = "torchvision 0.28.0"
HOOKS = "forward hooks on Conv/Linear at batch 1"


@dataclass(frozen=True)
class Golden:
    file: str
    params: int
    macs: int | None
    output: tuple[int, ...]
    source: str
    #: MACs were derived with archdsl's exact convention: compare exactly.
    exact_macs: bool = True
    #: "entries:fingerprint" of the reference state_dict (keys and shapes), or
    #: None.  Our node names must reproduce it exactly: no renaming.
    state_dict: str | None = None

ZOO = [
    Golden("lenet5.cnn", 61_706, 416_520, (10,),
           "hand count (LeCun et al. 1998, Fig. 2): params 156 + 2,416 + 48,120 + 10,164 + 850; "
           "MACs 117,600 + 240,000 + 48,000 + 10,080 + 840"),
    Golden("alexnet_2012.cnn", 60_965_224, 724_406_816, (1000,),
           f"PyTorch rebuild of Krizhevsky et al. 2012 / Caffe bvlc_alexnet (groups=2, LRN), 227x227, {HOOKS}",
           state_dict="16:8f93201fe5068db4"),
    Golden("alexnet.cnn", 61_100_840, 714_188_480, (1000,),
           f"{TV} alexnet(), 224x224, {HOOKS}; num_params and GFLOPS 0.714 in its weights metadata",
           state_dict="16:9b204a0e6319caba"),
    Golden("vgg16.cnn", 138_357_544, 15_470_264_320, (1000,),
           f"{TV} vgg16(), 224x224, {HOOKS}; num_params and GFLOPS 15.47 in its weights metadata",
           state_dict="32:e36b43eb356035da"),
    Golden("vgg16_bn.cnn", 138_365_992, 15_470_264_320, (1000,),
           f"{TV} vgg16_bn(), 224x224, {HOOKS}; num_params and GFLOPS 15.47 in its weights metadata",
           state_dict="97:ac9d6e9725a44cb1"),
    Golden("googlenet.cnn", 6_624_904, 1_498_376_192, (1000,),
           f"{TV} googlenet(aux_logits=False), 224x224, {HOOKS}; num_params and GFLOPS 1.498 in its weights metadata",
           state_dict="344:e5c470d1ce5e675e"),
    Golden("resnet18.cnn", 11_689_512, 1_814_073_344, (1000,),
           f"{TV} resnet18(), 224x224, {HOOKS}; num_params and GFLOPS 1.814 in its weights metadata",
           state_dict="122:f0e35161599236f3"),
    Golden("resnet50.cnn", 25_557_032, 4_089_184_256, (1000,),
           f"{TV} resnet50(), 224x224, {HOOKS}; num_params and GFLOPS 4.089 in its weights metadata",
           state_dict="320:fe1d335c3c7786ff"),
    Golden("resnet152.cnn", 60_192_808, 11_513_626_624, (1000,),
           f"{TV} resnet152(), 224x224, {HOOKS}; num_params and GFLOPS 11.514 in its weights metadata",
           state_dict="932:3446679ffd752d79"),
    Golden("mobilenet_v2.cnn", 3_504_872, 300_774_272, (1000,),
           f"{TV} mobilenet_v2(), 224x224, {HOOKS}; num_params and GFLOPS 0.301 in its weights metadata",
           state_dict="314:2a196dc04125b8ce"),
    Golden("mobilenet_v3_large.cnn", 5_483_032, 216_589_760, (1000,),
           f"{TV_28} mobilenet_v3_large(), 224x224, {HOOKS}; num_params and GFLOPS 0.22 in its weights metadata",
           state_dict="312:00e3a56a0bdeba96"),
    Golden("mobilenet_v3_small.cnn", 2_542_856, 56_510_400, (1000,),
           f"{TV_28} mobilenet_v3_small(), 224x224, {HOOKS}; num_params and GFLOPS 0.06 in its weights metadata",
           state_dict="244:6353e9f51ee2108d"),
    Golden("squeezenet1_1.cnn", 1_235_496, 349_151_936, (1000,),
           f"{TV} squeezenet1_1(), 224x224, {HOOKS}; num_params and GFLOPS 0.349 in its weights metadata",
           state_dict="52:a462856ef96ade94"),
    Golden("densenet121.cnn", 7_978_856, 2_834_161_664, (1000,),
           f"{TV} densenet121(), 224x224, {HOOKS}; num_params and GFLOPS 2.834 in its weights metadata",
           state_dict="727:1fe00a8008e9a530"),
    Golden("efficientnet_b0.cnn", 5_288_548, 385_814_752, (1000,),
           f"{TV} efficientnet_b0(), 224x224, {HOOKS}; num_params and GFLOPS 0.386 in its weights metadata",
           state_dict="360:20940b31d23df4a1"),
    Golden("regnet_x_400mf.cnn", 5_495_976, 413_812_608, (1000,),
           f"{TV_28} regnet_x_400mf(), 224x224, {HOOKS}; num_params and GFLOPS 0.41 in its weights metadata",
           state_dict="428:9be77a4f2be89474"),
    Golden("shufflenet_v2_x1_0.cnn", 2_278_604, 144_907_992, (1000,),
           f"{TV} shufflenet_v2_x1_0(), 224x224, {HOOKS}; num_params and GFLOPS 0.145 in its weights metadata",
           state_dict="338:bf479090b753ddd3"),
    Golden("unet.cnn", 31_030_658, 192_384_335_872, (2, 512, 512),
           f"PyTorch rebuild of Ronneberger et al. 2015 Fig. 1 with padding=1, 1x512x512, {HOOKS}/ConvTranspose",
           state_dict="46:27db06b52c594d29"),
    Golden("unet_572.cnn", 31_030_658, 150_428_424_448, (2, 388, 388),
           "PyTorch 2.13 rebuild of Ronneberger et al. 2015 Fig. 1 as published (unpadded 3x3 convolutions, "
           f"centre crops), 1x572x572, {HOOKS}/ConvTranspose",
           state_dict="46:27db06b52c594d29"),
    Golden("m5.cnn", 559_114, 67_427_328, (10,),
           f"PyTorch rebuild of Dai et al. 2017 M5 (torchaudio tutorial layout, paper widths), [1, 8000], {HOOKS}",
           state_dict="30:58cbc3c980d76150"),
    Golden("c3d.cnn", 79_991_015, 38_548_959_232, (487,),
           f"PyTorch rebuild of Tran et al. 2015 (DavideA/c3d-pytorch layout), [3, 16, 112, 112], {HOOKS}",
           state_dict="22:efc3074978e1a8d0"),
    Golden("convnext_tiny.cnn", 28_589_128, 4_455_531_264, (1000,),
           f"{TV} convnext_tiny(): num_params and GFLOPS 4.46 in its weights metadata; exact figures from a "
           f"PyTorch rebuild of its module tree, 224x224, {HOOKS} (a linear over an [H, W, C] map counts "
           "H·W·in·out), and by hand (header)",
           state_dict="182:39d0e94f41cc6e25"),
]

IDS = [g.file.removesuffix(".cnn") for g in ZOO]


def fingerprint(entries: dict[str, tuple[int, ...]]) -> str:
    """sha256 (16 hex digits) of the sorted lines "key 64x3x7x7"."""
    text = "\n".join(sorted(f"{key} {'x'.join(map(str, shape))}" for key, shape in entries.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_CACHE: dict[str, tuple[archdsl.Program, archdsl.Analysis]] = {}


def analysed(golden: Golden) -> tuple[archdsl.Program, archdsl.Analysis]:
    if golden.file not in _CACHE:
        program = archdsl.load(MODELS / golden.file)
        _CACHE[golden.file] = (program, archdsl.analyze(program.model()))
    return _CACHE[golden.file]


def state_dict(analysis: archdsl.Analysis) -> dict[str, tuple[int, ...]]:
    """What ``model.state_dict()`` would hold: ``node.weight``, ``node.bias``,
    batch-norm buffers and bare parameters (``features.1.0.layer_scale``), by
    name, with shapes."""
    entries: dict[str, tuple[int, ...]] = {}
    for node, cost in analysis.costs.items():
        assert cost is not None, f"{node} has no cost (shape unknown)"
        for name, shape in {**cost.parameter_shapes, **cost.buffer_shapes}.items():
            key = state_key(node, name)
            assert key not in entries, f"two tensors map to {key}"
            entries[key] = tuple(shape)
    return entries


def test_every_model_has_golden_figures():
    files = sorted(p.name for p in MODELS.glob("*.cnn"))
    assert files == sorted(g.file for g in ZOO)


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_loads_without_diagnostics(golden):
    program = archdsl.load(MODELS / golden.file)
    assert program.diagnostics == []
    assert program.check() == []
    assert len(program.models) == 1


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_trainable_parameters_exact(golden):
    _, analysis = analysed(golden)
    assert analysis.totals.params == golden.params, golden.source


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_macs(golden):
    if golden.macs is None:
        pytest.skip("no reference MACs")
    _, analysis = analysed(golden)
    macs = analysis.totals.macs
    assert abs(macs - golden.macs) <= 0.005 * golden.macs, golden.source
    if golden.exact_macs:
        assert macs == golden.macs, golden.source


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_output_shape(golden):
    _, analysis = analysed(golden)
    outputs = list(analysis.model.outputs.values())
    assert len(outputs) == 1
    assert analysis.shapes[outputs[0]] == golden.output
    assert analysis.ok


@pytest.mark.parametrize("golden", [g for g in ZOO if g.state_dict], ids=[i for g, i in zip(ZOO, IDS) if g.state_dict])
def test_node_names_reproduce_reference_state_dict(golden):
    """Node names + .weight/.bias/.running_mean... are the reference's
    state_dict keys, with the same shapes, exactly and without renaming:
    the reference's state_dict maps onto the nodes key for key."""
    _, analysis = analysed(golden)
    entries = state_dict(analysis)
    count, digest = golden.state_dict.split(":")
    sample = "\n".join(sorted(entries)[:20])
    assert len(entries) == int(count), f"{len(entries)} tensors, expected {count}; first keys:\n{sample}"
    assert fingerprint(entries) == digest, f"keys or shapes differ from the reference; first keys:\n{sample}"


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_header_states_the_golden_figures(golden):
    """The file's header and this table agree on the figures."""
    text = (MODELS / golden.file).read_text(encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    flat = re.sub(r"\s*#\s*", " ", header)
    assert f"{golden.params:,}" in flat
    if golden.macs is not None:
        assert f"{golden.macs:,}" in flat


def test_fingerprint_is_order_independent():
    a = {"conv.weight": (8, 3, 3, 3), "conv.bias": (8,)}
    assert fingerprint(a) == fingerprint(dict(reversed(list(a.items()))))
    assert fingerprint(a) != fingerprint({**a, "conv.bias": (9,)})


def test_cli_checks_the_whole_zoo():
    result = run_cli("check", "models")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_zoo_is_free_of_warnings():
    """Reference architectures are the lint rules' false-positive corpus: a
    warning on one is either suppressed inline with its reason (the model
    reproduces its reference faithfully) or a rule to reconsider."""
    result = run_cli("check", "--strict", "-q", "models")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("golden", [g for g in ZOO if g.file in ("googlenet.cnn", "m5.cnn")],
                         ids=["googlenet", "m5"])
def test_cli_summary_json_agrees(golden):
    result = run_cli("summary", f"models/{golden.file}", "--format", "json")
    assert result.returncode == 0, result.stderr
    (model,) = json.loads(result.stdout)["models"]
    assert model["totals"]["params"] == golden.params
    assert model["totals"]["macs"] == golden.macs
    (output,) = model["outputs"].values()
    assert tuple(output["shape"]) == golden.output


@pytest.mark.parametrize("golden", ZOO, ids=IDS)
def test_model_states_its_golden_figures_as_expectations(golden):
    """Each model file carries its figures as `expect` statements, which
    `archdsl check` enforces (a failing one is E501)."""
    model = archdsl.load(MODELS / golden.file).model()
    stated = {(e.figure, e.op): e.value for e in model.expectations}
    assert stated[("params", "==")] == golden.params
    if golden.macs is not None:
        assert stated[("macs", "==")] == golden.macs
    assert tuple(stated[("output", "==")]) == golden.output


def test_unet_572_crops_are_computed_and_centre_the_skips():
    """The paper's crops (64 -> 56, 136 -> 104, 280 -> 200, 568 -> 392)
    come from the shapes, and each cropped skip samples the input where
    the up-convolved map does.  By hand: a valid 3x3 convolution moves the
    first centre by one step of its grid, a 2x2 pool by half a step and
    doubles the step; enc4's first pixel is centred at 33.5 with step 8,
    so cropping 4 rows puts the skip's first pixel at 33.5 + 4·8 = 65.5,
    and up4's (bottom: 69.5 with step 16, up-convolved: step 8, first
    output half a step before its input's centre, 69.5 - 4) also at 65.5."""
    _, analysis = analysed(next(g for g in ZOO if g.file == "unet_572.cnn"))
    crops = [name for name, node in analysis.model.nodes.items() if node.op == "narrow"]
    assert [analysis.shapes[name][1:] for name in crops[1::2]] == [(56, 56), (104, 104), (200, 200), (392, 392)]
    crop4 = analysis.fields[crops[1]]["image"]
    up4 = analysis.fields["up4"]["image"]
    assert (crop4.start, crop4.jump) == (up4.start, up4.jump) == ((65.5, 65.5), (8, 8))
