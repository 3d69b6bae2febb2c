"""How fast the NumPy runtime runs the zoo, against the machine's own GEMM.

    python benchmarks/runtime.py                 # every model of models/ (the zoo), batch 1 and 8
    python benchmarks/runtime.py --batch 1 8 --repeat 5 --rounds 3 --models resnet50 efficientnet_b0

For every model and batch size it prints the latency (best of --repeat runs
after a warm-up), the achieved GFLOP/s counted as 2·(static MACs)·batch /
time, and that rate as a fraction of the float32 GEMM rate NumPy reaches on
this machine, measured in the same run by a worker process of its own (a
2048x2048 matrix product).  The GEMM is the ceiling: a convolution is one
GEMM plus im2col, and everything else (batchnorm, activations, pooling) is
extra memory traffic.

Where PyTorch is importable (optional, never required) the same model also
runs in PyTorch, as the module ``archdsl export --to torch`` writes (eval
mode, inference mode) with the same weights and the same thread count; with
``--onnx`` (and onnx and onnxruntime importable) it also runs in onnxruntime
(CPU, the same intra-op threads), from the file ``archdsl export --to onnx``
writes.  For each the script prints the time, the time ratio, and the
largest difference between the outputs relative to the largest output.
With ``--exact`` it also runs each model once in float64 without the plan's
folding and fusion (``compile(..., dtype=float64, optimize=False)``, the
same weights and inputs) and prints each float32 side's largest error
against that, relative to the float64 run's largest output: when NumPy and PyTorch differ,
this says which of them is off, or that both are (a model whose float32
rounding the network amplifies).

The sides of a model alternate ``--rounds`` times (NumPy, PyTorch, NumPy,
...), each worker a fresh process keeping the best of its runs; the table
shows each side's median over the rounds (on a shared machine one round
can be slowed throughout), and the load average before and after.  Weights are random
at a trained network's scale (``archdsl.runtime.init.trained_like``).

Each side is timed in its own process (see ``main``): in one process,
OpenBLAS's spinning idle threads slow PyTorch about 2x (and so flatter
NumPy).  The first lines printed say which BLAS kernel NumPy runs and
whether OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archdsl  # noqa: E402
from archdsl.runtime.init import trained_like  # noqa: E402


def zoo() -> list[str]:
    """The file stems of every model of models/ (the zoo), sorted."""
    return sorted(path.stem for path in (ROOT / "models").glob("*.cnn"))


#: What the workers time with: wall time, or with ``--cpu-time`` the CPU
#: time of the calling thread (one thread per side; see ``main``).
CLOCK = time.perf_counter


def best_time(function, repeat: int, budget: float = 2.0) -> float:
    """The best of at least ``repeat`` timed runs, continuing (up to 10x
    ``repeat`` runs) while ``budget`` seconds have not passed: on a shared
    machine the best run is the one least disturbed."""
    function()  # warm-up: page faults, BLAS thread start
    best = float("inf")
    started = time.perf_counter()
    runs = 0
    while runs < repeat or (time.perf_counter() - started < budget and runs < 10 * repeat):
        start = CLOCK()
        function()
        best = min(best, CLOCK() - start)
        runs += 1
    return best


def gemm_gflops(repeat: int, n: int = 2048) -> float:
    """float32 matrix product rate of NumPy's BLAS here, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_time(lambda: a @ b, max(repeat, 5)) / 1e9


# ------------------------------------------------------------------ PyTorch


def torch_forward(model: archdsl.Model, state: dict[str, np.ndarray]):
    """A function running ``model`` in PyTorch (eval mode, inference) with
    the weights of ``state``: the module ``archdsl export --to torch``
    writes, so the speed reference is the code a user would train."""
    import torch

    from archdsl.emit.torch_module import export_torch

    namespace: dict = {}
    exec(compile(export_torch(model), f"<{model.name} torch module>", "exec"), namespace)  # our own generated code
    module = namespace[model.name]()
    module.load_state_dict({key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()})
    module.eval()

    def forward(*inputs):
        with torch.inference_mode():
            result = module(*inputs)
        return list(result.values()) if isinstance(result, dict) else [result]

    return forward


def onnx_forward(model: archdsl.Model, state: dict[str, np.ndarray], shapes, threads: int):
    """A function running ``model`` in onnxruntime (CPU, ``threads`` intra-op
    threads, all graph optimisations) from the file ``archdsl export --to
    onnx`` writes, batch dimension symbolic."""
    import onnxruntime

    from archdsl.emit.onnx import build

    proto = build(model, shapes, state, dynamic_batch=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_inputs()]

    def forward(*inputs):
        return session.run(None, dict(zip(names, inputs)))

    return forward, f"onnxruntime {onnxruntime.__version__} ({threads} threads)"


# --------------------------------------------------------------------- main
#
# Each side runs in its own process.  Timed in one process, OpenBLAS's idle
# threads (NumPy's) keep spinning for a while after each NumPy matrix
# multiply and take cores from PyTorch's threads (PyTorch ran up to 2x slower
# that way), and PyTorch's OpenMP threads do the same to NumPy.  So the
# parent process only starts workers and compares their results: one worker
# measures the GEMM rate, one per model times NumPy (never importing
# PyTorch), one per model times PyTorch (with OPENBLAS_NUM_THREADS=1, so
# that NumPy, which it imports to build the weights, has no BLAS threads at
# all).  The two sides of a model run alternately, --rounds times, and each
# keeps its best time.


def blas_description() -> str:
    """Which BLAS NumPy runs, its kernel (core type) and thread count, and the
    OpenBLAS tuning variables that are set (they can slow it down)."""
    import threadpoolctl  # archdsl's own dependency (archdsl/runtime/schedule.py)

    pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    info = None
    if pools:
        info = f"{pools[0].get('internal_api')} {pools[0].get('version')}, " \
               f"{pools[0].get('architecture')} kernel, {pools[0].get('num_threads')} thread(s)"
    tuning = [f"{name}={os.environ[name]}" for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                         "OPENBLAS_THREAD_TIMEOUT") if name in os.environ]
    return (info or "BLAS unknown") + "; " + (", ".join(tuning) if tuning else "no OPENBLAS_CORETYPE/L2_SIZE set")


def model_path(names) -> Path | None:
    return next((ROOT / "models" / name for name in names if (ROOT / "models" / name).is_file()), None)


def prepared(path: Path):
    """The model, its weights (``trained_like``, seeded) and, per batch size,
    its inputs: the same in every process."""
    model = archdsl.load(path).model()
    net = archdsl.compile(model, seed=0)
    net.load_state_dict(trained_like(net.state_dict()))
    return model, net


def inputs_for(net, batch: int) -> list[np.ndarray]:
    rng = np.random.default_rng(batch)
    return [rng.standard_normal((batch, *shape), dtype=np.float32) for shape in net.INPUTS.values()]


def worker(args) -> int:
    """One side's timings (printed as JSON), outputs saved for the comparison."""
    import json

    if args.worker == "gemm":
        print(json.dumps({"gemm": gemm_gflops(args.repeat), "blas": blas_description()}))
        return 0
    model, net = prepared(Path(args.path))
    threads = int(args.threads)
    results, outputs = {}, {}
    if args.worker == "torch":
        import torch

        torch.set_num_threads(threads)
        reference = torch_forward(model, net.state_dict())
        for batch in args.batch:
            tensors = [torch.from_numpy(x) for x in inputs_for(net, batch)]
            results[batch] = best_time(lambda tensors=tensors: reference(*tensors), args.repeat)
            for index, value in enumerate(reference(*tensors)):
                outputs[f"{batch}_{index}"] = value.numpy()
        version = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    elif args.worker == "exact":  # not timed: the float64 reference of every side
        exact = archdsl.compile(model, dtype=np.float64, optimize=False)
        exact.load_state_dict({key: value.astype(np.float64) if value.dtype == np.float32 else value
                               for key, value in net.state_dict().items()})
        for batch in args.batch:
            value = exact(*(x.astype(np.float64) for x in inputs_for(net, batch)))
            for index, array in enumerate([value] if isinstance(value, np.ndarray) else list(value.values())):
                outputs[f"{batch}_{index}"] = array
            results[batch] = 0.0
        version = "float64, unfused"
    elif args.worker == "onnx":
        run, version = onnx_forward(model, net.state_dict(), net.plan.shapes, threads)
        for batch in args.batch:
            inputs = inputs_for(net, batch)
            results[batch] = best_time(lambda inputs=inputs: run(*inputs), args.repeat)
            for index, array in enumerate(run(*inputs)):
                outputs[f"{batch}_{index}"] = array
    else:
        for batch in args.batch:
            inputs = inputs_for(net, batch)
            results[batch] = best_time(lambda inputs=inputs: net(*inputs), args.repeat)
            value = net(*inputs)
            for index, array in enumerate([value] if isinstance(value, np.ndarray) else list(value.values())):
                outputs[f"{batch}_{index}"] = array
        version = f"numpy {np.__version__}"
    if args.save:
        np.savez(args.save, **outputs)
    print(json.dumps({"seconds": results, "version": version}))
    return 0


def relative_difference(ours_file: str, theirs_file: str, batch: int) -> float:
    """max |ours - theirs| / max |theirs| over the outputs at ``batch``."""
    with np.load(ours_file) as a, np.load(theirs_file) as b:
        keys = [k for k in a.files if k.startswith(f"{batch}_")]
        return max(float(np.max(np.abs(a[k] - b[k])) / np.max(np.abs(b[k]))) for k in keys)


def run_worker(kind: str, args, threads: str, path: Path | None = None, save: str | None = None,
               extra_env: dict | None = None) -> dict:
    import json
    import subprocess

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--repeat", str(args.repeat),
               "--threads", threads, "--batch", *map(str, args.batch)]
    if args.cpu_time:
        command.append("--cpu-time")
    if path is not None:
        command += ["--path", str(path)]
    if save is not None:
        command += ["--save", save]
    env = {**os.environ, **(extra_env or {})}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_sides(args, threads: str, path: Path, sides) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """Each side's median time per batch size over ``args.rounds`` rounds in
    which the sides (kind, output file, extra environment) alternate, and
    each side's version string."""
    times: dict[str, dict[int, list[float]]] = {kind: {b: [] for b in args.batch} for kind, _, _ in sides}
    versions: dict[str, str] = {}
    for _ in range(max(1, args.rounds)):
        for kind, file, env in sides:
            result = run_worker(kind, args, threads, path, file, env)
            for b in args.batch:
                times[kind][b].append(result["seconds"][str(b)])
            versions[kind] = result["version"]
    medians = {kind: {b: float(np.median(values)) for b, values in per_batch.items()}
               for kind, per_batch in times.items()}
    return medians, versions


def row(args, label: str, model: archdsl.Model, batch: int, medians: dict[str, dict[int, float]],
        files: dict[str, str], gemm: float) -> str:
    """One line of the table: NumPy's time and rate, then each other side's
    time, ratio and difference, then the errors against float64."""
    seconds = medians["numpy"][batch]
    flops = 2 * archdsl.analyze(model, batch=batch).totals.macs
    rate = flops / seconds / 1e9
    line = f"{label} {batch:>5} {seconds * 1e3:>9.1f} {rate:>8.1f} {rate / gemm:>8.2f}"
    for side, width in (("torch", 11), ("onnx", 10)):
        if side in medians:
            theirs = medians[side][batch]
            diff = relative_difference(files["numpy"], files[side], batch)
            line += f" {theirs * 1e3:>9.1f} {seconds / theirs:>{width}.2f} {diff:>10.1e}"
    if args.exact:
        for side in ("numpy", "torch"):
            if side in medians:
                line += f" {relative_difference(files[side], files['exact'], batch):>10.1e}"
    return line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per case at least (more while under 2 s; the best counts)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="NumPy and PyTorch workers alternate this many times per model; each side's median "
                             "over the rounds counts")
    parser.add_argument("--models", nargs="+", help="file stems under models/, e.g. resnet50 (default: all of them)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--onnx", action="store_true", help="also time onnxruntime (when installed)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread per side, timed by the CPU time of that thread (time.thread_time), not wall "
                             "time: comparable figures on a machine busy with other work")
    parser.add_argument("--exact", action="store_true",
                        help="also compare each side with a float64 run of the unfused graph (error columns)")
    parser.add_argument("--worker", choices=["gemm", "numpy", "torch", "onnx", "exact"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    parser.add_argument("--threads", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.thread_time
    if args.worker:
        return worker(args)

    import importlib.util
    import tempfile

    has_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    has_onnx = args.onnx and all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))
    cases = [(stem, (f"{stem}.cnn",)) for stem in args.models or zoo()]
    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    if args.cpu_time:  # the workers inherit it: NumPy's BLAS and PyTorch then run one thread
        threads = os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"
    gemm = run_worker("gemm", args, threads)
    print(f"numpy {np.__version__}, {os.cpu_count()} cores, {threads} thread(s) each side; "
          f"NumPy's BLAS: {gemm['blas']}")
    if has_torch:
        print(f"timing: each side in its own process (the parent only compares), NumPy and PyTorch alternating, "
              f"{args.rounds} round(s) (best run of each round, median over rounds); PyTorch's process has "
              "OPENBLAS_NUM_THREADS=1")
    else:
        print(f"timing: NumPy in a process of its own, {args.rounds} round(s), best run of each, median over rounds "
              "(PyTorch not installed, or --no-torch)")
    if args.cpu_time:
        print("clock: CPU time of the one thread of each side (time.thread_time), not wall time")
    print(f"float32 GEMM (2048x2048 @ 2048x2048): {gemm['gemm']:.1f} GFLOP/s; load average "
          + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    width = max(len(label) for label, _ in cases)
    header = f"{'model':<{width}} {'batch':>5} {'ms':>9} {'GFLOP/s':>8} {'of GEMM':>8}"
    if has_torch:
        header += f" {'torch ms':>9} {'numpy/torch':>11} {'rel. diff':>10}"
    if has_onnx:
        header += f" {'ort ms':>9} {'numpy/ort':>10} {'rel. diff':>10}"
    if args.exact:
        header += f" {'numpy err':>10}" + (f" {'torch err':>10}" if has_torch else "")
    print(header)
    print("-" * len(header))
    torch_version = ort_version = None
    with tempfile.TemporaryDirectory() as directory:
        for label, names in cases:
            path = model_path(names)
            if path is None:
                print(f"{label:<{width}} (no {' or '.join(names)} in models/: skipped)")
                continue
            ours_file, theirs_file = str(Path(directory) / "numpy.npz"), str(Path(directory) / "torch.npz")
            ort_file = str(Path(directory) / "onnx.npz")
            exact_file = str(Path(directory) / "exact.npz")
            sides = [("numpy", ours_file, None)]
            if has_torch:
                sides.append(("torch", theirs_file, {"OPENBLAS_NUM_THREADS": "1"}))
            if has_onnx:
                sides.append(("onnx", ort_file, None))
            try:
                medians, versions = time_sides(args, threads, path, sides)
                if args.exact:
                    run_worker("exact", args, threads, path, exact_file)
            except RuntimeError as error:
                print(f"{label:<{width}} failed: {str(error).strip().splitlines()[-1]}", flush=True)
                continue
            torch_version = versions.get("torch", torch_version)
            ort_version = versions.get("onnx", ort_version)
            files = {"numpy": ours_file, "torch": theirs_file, "onnx": ort_file, "exact": exact_file}
            model = archdsl.load(path).model()
            for batch in args.batch:
                print(row(args, f"{label:<{width}}", model, batch, medians, files, gemm["gemm"]), flush=True)
    print("load average after: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if torch_version:
        print(f"PyTorch: {torch_version}")
    if ort_version:
        print(f"ONNX: {ort_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
