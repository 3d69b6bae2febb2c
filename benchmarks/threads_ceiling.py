"""What a second thread can bring to one image's forward pass in NumPy.

    python benchmarks/threads_ceiling.py
    python benchmarks/threads_ceiling.py --models efficientnet_b0 convnext_tiny --repeat 9

At batch 1 there is no batch to cut into parts (``archdsl/runtime/schedule.py``),
so a NumPy pass uses the second core only inside BLAS's matrix multiplies;
PyTorch runs every kernel on both.  This script measures why archdsl does
not cut the other kernels over threads (it did once, and took it out:
docs/runtime.md, "Threads"), in two tables printed in one run:

1. **NumPy calls on two threads.**  The same elementwise call (``tanh``,
   ``multiply``) repeated on arrays of a given size, on one thread, then on
   two threads each doing the same number of calls at once.  The speedup is
   twice the one-thread time over the two-thread time: 2.0 when the calls
   overlap perfectly, 1.0 when they take turns.  NumPy releases the
   interpreter lock inside each loop but holds it to set the call up, so
   calls of the size the runtime's cache-sized blocks make (16k-64k
   numbers) overlap only partly.
2. **The ceiling, per model.**  One image's pass with BLAS on all threads
   (what ``archdsl run`` does at batch 1), with BLAS on one thread, and two
   one-image passes at once on two threads with BLAS on one thread each
   (time per pass printed): no way of cutting one pass over two threads,
   with its extra synchronisation and smaller calls, can beat two
   independent passes sharing the machine, so the last column bounds what
   cutting kernels over threads could reach.

Wall times: the best of ``--repeat`` runs in each of three rounds in
which the columns of a row take turns, after a warm-up (the machine's
noise falls on every column alike).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from runtime import inputs_for, prepared  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from archdsl.runtime import set_num_threads  # noqa: E402

DEFAULT_MODELS = ["efficientnet_b0", "convnext_tiny", "densenet121", "resnet50", "resnet18", "mobilenet_v3_large"]


def best(functions: list[Callable[[], object]], repeat: int, rounds: int = 3) -> list[float]:
    """Each function's best time of ``repeat`` runs per round over
    ``rounds`` rounds, the functions taking turns round by round (so that a
    disturbed moment of the machine falls on all of them)."""
    for function in functions:
        function()  # warm-up
    results = [float("inf")] * len(functions)
    for _ in range(rounds):
        for index, function in enumerate(functions):
            for _ in range(repeat):
                start = time.perf_counter()
                function()
                results[index] = min(results[index], time.perf_counter() - start)
    return results


def on_threads(function: Callable[[], object], threads: int) -> Callable[[], None]:
    """``function`` run once on each of ``threads`` threads at once."""

    def run() -> None:
        workers = [threading.Thread(target=function) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return run


def calls_table(repeat: int) -> None:
    print("1. The same NumPy call repeated, on one thread and on two at once (each thread as many calls)")
    print(f"{'call':<10} {'numbers':>9} {'per call us':>12} {'one thread ms':>14} {'two threads ms':>15} "
          f"{'speedup':>8}")
    rng = np.random.default_rng(0)
    for name, ufunc in (("tanh", np.tanh), ("multiply", None)):
        for size in (4096, 16384, 65536, 262144, 1 << 20):
            x = rng.standard_normal(size, dtype=np.float32)
            calls = max(20, (1 << 25) // size)

            def work(x=x, calls=calls, ufunc=ufunc) -> None:
                out = np.empty_like(x)
                for _ in range(calls):
                    if ufunc is None:
                        np.multiply(x, x, out=out)
                    else:
                        ufunc(x, out=out)

            one, two = best([work, on_threads(work, 2)], repeat)
            print(f"{name:<10} {size:>9} {one / calls * 1e6:>12.1f} {one * 1e3:>14.1f} {two * 1e3:>15.1f} "
                  f"{2 * one / two:>8.2f}")


def models_table(models: list[str], repeat: int) -> None:
    print()
    print("2. One image per pass (ms): BLAS on all threads, BLAS on one, and two passes at once on two threads")
    print(f"{'model':<20} {'BLAS all':>9} {'BLAS 1':>8} {'2 at once, per pass':>20} {'ceiling':>8}")
    set_num_threads(1)  # one pass of one image: never cut into parts
    for name in models:
        _, net = prepared(ROOT / "models" / f"{name}.cnn")
        x = inputs_for(net, 1)
        def one_blas_thread(function: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                with threadpool_limits(1, user_api="blas"):
                    function()
            return run

        def forward(net=net, x=x) -> None:
            net(*x)

        whole, one_blas, pair = best([forward, one_blas_thread(forward),
                                      one_blas_thread(on_threads(forward, 2))], repeat)
        pair /= 2
        print(f"{name:<20} {whole * 1e3:>9.1f} {one_blas * 1e3:>8.1f} {pair * 1e3:>20.1f} {whole / pair:>7.2f}x")
    print("(ceiling: 'BLAS all' over '2 at once, per pass', the most any split of one pass over two threads"
          " could gain)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="file stems under models/")
    parser.add_argument("--repeat", type=int, default=3, help="runs per round (three rounds)")
    args = parser.parse_args(argv)
    with threadpool_limits(1, user_api="blas"):
        calls_table(args.repeat)
    models_table(args.models, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
