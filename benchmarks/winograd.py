"""The 3x3 convolution's two paths side by side, per ResNet layer shape:
the blocked im2col GEMM and Winograd F(2x2, 3x3) (archdsl/runtime/kernels/
winograd.py), and which one ``use_winograd`` picks.

    python benchmarks/winograd.py                  # one thread, thread CPU time
    python benchmarks/winograd.py --threads 2 --wall

Each layer is ``conv(x, w, b, padding=1, activation="relu")`` on a
channels-last input, as inside ResNet (the bias in the packed weight, a
scratch dict shared by the calls); both paths run alternately in one
process, each timed ``--repeat`` times after a warm-up, and the best run of
each is printed with the ratio Winograd / im2col (below 1: Winograd is
faster) and the relative difference of the two outputs.  The thread count
is set before NumPy is imported (``OPENBLAS_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (channels, spatial size) of the stride-1 3x3 convolutions of ResNet-18/50's four stages.
SHAPES = ((64, 56), (128, 28), (256, 14), (512, 7))


def time_layer(batch, channels, size, dtype, repeat, clock):
    """The best times of ``conv`` on im2col and on Winograd for one layer
    shape (padding 1, bias, relu), run alternately, and the relative
    difference of their outputs."""
    import numpy as np

    from archdsl.runtime.kernels import conv as conv_kernels

    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, size, size, channels)).astype(dtype)
    x = x.transpose(0, 3, 1, 2)  # channels-last memory, viewed as NCHW
    weight = (rng.standard_normal((channels, channels, 3, 3)) / np.sqrt(9 * channels)).astype(dtype)
    bias = rng.standard_normal(channels).astype(dtype)
    packings = (conv_kernels.pack_conv_weight(weight, 1, bias), conv_kernels.pack_conv_weight_winograd(weight, 1, bias))
    scratch: dict = {}
    outputs = [conv_kernels.conv(x, weight, bias, padding=1, packed=packed, scratch=scratch, activation="relu")
               for packed in packings]  # also the warm-up
    best = [float("inf")] * 2
    for _ in range(repeat):
        for index, packed in enumerate(packings):
            start = clock()
            conv_kernels.conv(x, weight, bias, padding=1, packed=packed, scratch=scratch, activation="relu")
            best[index] = min(best[index], clock() - start)
    difference = np.abs(outputs[1] - outputs[0]).max() / np.abs(outputs[0]).max()
    return best[0], best[1], float(difference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--wall", action="store_true", help="wall time instead of the thread's CPU time")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per path (best kept)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = parser.parse_args(argv)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    sys.path.insert(0, str(ROOT))

    from archdsl.runtime.kernels import winograd

    clock = time.perf_counter if args.wall else time.thread_time
    print(f"{args.threads} BLAS thread(s), {'wall' if args.wall else 'thread CPU'} time, {args.dtype}, "
          f"best of {args.repeat}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'layer':>12} {'batch':>5} {'im2col ms':>10} {'winograd ms':>12} {'ratio':>6} {'picked':>8} "
          f"{'rel diff':>9}")
    for batch in args.batch:
        for channels, size in SHAPES:
            direct, fast, difference = time_layer(batch, channels, size, args.dtype, args.repeat, clock)
            picked = "winograd" if winograd.use_winograd(batch, channels, channels, size, size) else "im2col"
            print(f"{channels:>6}@{size:<5} {batch:>5} {direct * 1e3:>10.2f} {fast * 1e3:>12.2f} "
                  f"{fast / direct:>6.2f} {picked:>8} {difference:>9.1e}")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
