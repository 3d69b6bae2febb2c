"""Where a model's time goes, per kind of layer, in NumPy and in PyTorch side by side.

    python benchmarks/profile_vs_torch.py --models convnext_tiny efficientnet_b0 --batch 1

One thread on each side (``OPENBLAS_NUM_THREADS=1``, ``torch.set_num_threads(1)``),
both in this one process: with one thread neither side has idle threads
spinning, so running them together is fair, and the table compares the
kernels themselves.  NumPy's side is ``CompiledModel.profile`` (the fastest
of ``--runs`` profiled passes after a warm-up); PyTorch's is
``torch.profiler`` on the fastest of ``--runs`` passes of the module ``archdsl export
--to torch`` writes (eval, inference mode), per pass: the time of each
top-level operator (``aten::conv2d`` with everything it calls; the
profiler's own overhead is in these, so the total printed is the fastest
unprofiled pass instead).  A
convolution's kind comes from its weight: depthwise (one input channel per
group and as many groups as channels), grouped, pointwise (1x1), or its
kernel size (3x3, 7x7, ...), the same on both sides.  A batchnorm folded
into a convolution, or an activation fused into one, costs 0 ms on NumPy's
side: its time is in the convolution's row.

PyTorch is needed (``pip install torch==2.13.0``); the script says so and
exits 2 without it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"  # before NumPy loads

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import archdsl  # noqa: E402
from archdsl.runtime.init import trained_like  # noqa: E402

#: PyTorch's operator -> the op kind archdsl's profile names.
TORCH_KINDS = {
    "aten::linear": "linear", "aten::addmm": "linear", "aten::batch_norm": "batchnorm",
    "aten::layer_norm": "layernorm", "aten::relu": "relu", "aten::relu_": "relu", "aten::relu6": "relu6",
    "aten::hardtanh": "relu6", "aten::hardtanh_": "relu6", "aten::silu": "silu", "aten::silu_": "silu",
    "aten::sigmoid": "sigmoid", "aten::hardswish": "hardswish", "aten::hardswish_": "hardswish",
    "aten::hardsigmoid": "hardsigmoid", "aten::gelu": "gelu", "aten::add": "add", "aten::add_": "add",
    "aten::mul": "mul", "aten::mul_": "mul", "aten::cat": "concat", "aten::max_pool2d": "maxpool",
    "aten::max_pool3d": "maxpool", "aten::avg_pool2d": "avgpool", "aten::adaptive_avg_pool2d": "avgpool",
    "aten::mean": "avgpool", "aten::flatten": "reshape", "aten::view": "reshape", "aten::reshape": "reshape",
    "aten::transpose": "reshape", "aten::permute": "reshape", "aten::contiguous": "reshape",
    "aten::dropout": "dropout", "aten::channel_shuffle": "reshape", "aten::chunk": "reshape",
    "aten::narrow": "reshape", "aten::slice": "reshape",
}


#: archdsl's op kinds named as the PyTorch operators that do their work.
OUR_KINDS = {"global_avgpool": "avgpool", "adaptive_avgpool2d": "avgpool", "scale": "mul", "permute": "reshape",
             "flatten": "reshape", "layernorm2d": "layernorm"}


def conv_kind(weight_shape, channels: int) -> str:
    """A convolution's kind from its weight ``[O, I/g, *K]`` and input channels."""
    out, per_group, *kernel = weight_shape
    groups = channels // per_group if per_group else 1
    if groups > 1 and per_group == 1 and out == channels:
        return f"conv depthwise {'x'.join(map(str, kernel))}"
    if groups > 1:
        return "conv grouped"
    if all(k == 1 for k in kernel):
        return "conv 1x1"
    return f"conv {'x'.join(map(str, kernel))}"


def numpy_kinds(net, model, inputs, runs: int) -> tuple[dict[str, float], float]:
    """Seconds per kind of NumPy's fastest profiled pass, and its total."""
    net(*inputs)
    best = min((net.profile(*inputs) for _ in range(runs)), key=lambda profile: profile.total)
    state = net.state_dict()
    kinds: dict[str, float] = defaultdict(float)
    for row in best.nodes:
        kind = OUR_KINDS.get(row.kind, re.sub(r"[123]d$", "", row.kind))
        weight = state.get(f"{row.node}.weight")
        if row.kind.startswith("conv") and weight is not None and "transpose" not in row.kind:
            source = model.nodes[row.node].inputs[0]
            kind = conv_kind(weight.shape, net.plan.shapes[source][0])
        kinds[kind] += row.seconds
    return kinds, best.total


def torch_kinds(model, state, inputs, runs: int) -> tuple[dict[str, float], float]:
    """Seconds per kind of PyTorch's fastest profiled pass (of ``runs``, each
    under a profiler of its own, after a warm-up: the same rule as NumPy's
    side), and its total."""
    import time

    import torch
    from runtime import torch_forward

    torch.set_num_threads(1)
    forward = torch_forward(model, state)
    tensors = [torch.from_numpy(x) for x in inputs]
    forward(*tensors)
    total = float("inf")
    for _ in range(runs):  # the pass's own time, without the profiler's overhead
        started = time.perf_counter()
        forward(*tensors)
        total = min(total, time.perf_counter() - started)
    fastest: dict[str, float] = {}
    for _ in range(runs):
        # One profiler per pass: a mean over passes carried the slow ones (profiled passes of
        # DenseNet-121 took 76-132 ms on one quiet afternoon, unprofiled 83 ms).
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profiler:
            forward(*tensors)
        kinds: dict[str, float] = defaultdict(float)
        for event in profiler.events():
            if event.cpu_parent is not None:
                continue
            kind = TORCH_KINDS.get(event.name, event.name)
            if event.name in ("aten::conv2d", "aten::conv1d", "aten::conv3d"):
                x, weight = event.input_shapes[0], event.input_shapes[1]
                kind = conv_kind(weight, x[1])
            kinds[kind] += event.cpu_time_total / 1e6
        if not fastest or sum(kinds.values()) < sum(fastest.values()):
            fastest = kinds
    return fastest, total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", required=True, help="file stems under models/")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5, help="profiled passes per side")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("profile_vs_torch: PyTorch is not installed (pip install torch==2.13.0)", file=sys.stderr)
        return 2
    print(f"one thread each side; batch {args.batch}; numpy {np.__version__}, torch {torch.__version__}; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for stem in args.models:
        model = archdsl.load(ROOT / "models" / f"{stem}.cnn").model()
        net = archdsl.compile(model, seed=0)
        net.load_state_dict(trained_like(net.state_dict()))
        rng = np.random.default_rng(args.batch)
        inputs = [rng.standard_normal((args.batch, *shape), dtype=np.float32) for shape in net.INPUTS.values()]
        ours, our_total = numpy_kinds(net, model, inputs, args.runs)
        theirs, their_total = torch_kinds(model, net.state_dict(), inputs, args.runs)
        print(f"\n{stem}, batch {args.batch}: NumPy {our_total * 1e3:.1f} ms, PyTorch {their_total * 1e3:.1f} ms "
              f"({our_total / their_total:.2f}x)")
        print(f"{'kind':<24} {'numpy ms':>9} {'torch ms':>9} {'ratio':>6}")
        for kind in sorted(set(ours) | set(theirs), key=lambda k: -max(ours.get(k, 0), theirs.get(k, 0))):
            a, b = ours.get(kind, 0.0), theirs.get(kind, 0.0)
            if max(a, b) < 5e-5:
                continue
            print(f"{kind:<24} {a * 1e3:>9.2f} {b * 1e3:>9.2f} {a / b if b else float('inf'):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
