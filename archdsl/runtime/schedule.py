"""How a forward pass uses the threads: a batch of several images is cut
into parts (one per thread) that run the network at once, each on one
thread, with BLAS held to one thread meanwhile; the parts are joined
before the network's head.

Why whole parts rather than each kernel on several threads: OpenBLAS's
idle threads keep spinning for a while after every matrix multiply, so the
NumPy-only kernels (depthwise convolutions, activations, pooling, norms)
that run between multiplies found the second core busy and ran no faster
on two threads (measured in one process, 2-core Xeon: EfficientNet-B0 at
batch 8, 0.96x; ConvNeXt-T 0.91x).  With one BLAS thread per part, every
kernel, multiplies included, runs on both cores: EfficientNet-B0 1.8x,
ConvNeXt-T 1.4x, DenseNet-121 1.35x faster than the whole batch with two
BLAS threads (``benchmarks/runtime.py``; docs/runtime.md).

The head (the steps after the last one whose output holds more than
:data:`HEAD_NUMBERS` numbers per image: global pooling and the classifier,
typically) runs once on the joined batch with BLAS's usual threads: there
the weights outweigh the activations (AlexNet's and VGG's fully connected
layers: 58 and 124 million weights), and each part would read them all.

A batch is cut only when each part has at least :data:`PART_MACS`
multiply-accumulates: below that, the interpreter's own Python work per
step, which the parts do one at a time (they share the interpreter lock),
outweighs what the second core brings (LeNet-5, M5).

Above it the interpreter lock still decides: every NumPy call hands it
from one part's thread to the other, and a network of many small calls
(ShuffleNetV2, RegNetX-400MF) ran slower in parts than whole (two parts
of 4 images at once took 2.3x and 1.7x as long as one part alone, against
1.3-1.5x for EfficientNet-B0 and ResNet-18).  No static count predicted
which side wins, so each model measures it (:class:`PartsChoice`): for
each batch size, its first passes alternate between parts and whole, and
the faster way is kept.

BLAS's thread count is set with threadpoolctl, the library scikit-learn
uses for the same purpose: it finds the BLAS that NumPy loaded (OpenBLAS,
MKL, BLIS) and calls its own setter; NumPy has none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Numbers per image of a step's output at or below which it may be part of the head.
HEAD_NUMBERS = 16384
#: Multiply-accumulates a part must have at least.
PART_MACS = 300_000_000


class _OneBlasThread:
    """Holds BLAS to one thread while any split pass runs (passes may run
    concurrently: the first in sets the limit, the last out restores it)."""

    lock = threading.Lock()
    active = 0
    limiter: Any = None
    controller: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS held to one thread inside the block (see :class:`_OneBlasThread`)."""
    with _OneBlasThread.lock:
        if _OneBlasThread.active == 0:
            if _OneBlasThread.controller is None:
                from threadpoolctl import ThreadpoolController

                _OneBlasThread.controller = ThreadpoolController()
            _OneBlasThread.limiter = _OneBlasThread.controller.limit(limits=1, user_api="blas")
        _OneBlasThread.active += 1
    try:
        yield
    finally:
        with _OneBlasThread.lock:
            _OneBlasThread.active -= 1
            if _OneBlasThread.active == 0:
                _OneBlasThread.limiter.restore_original_limits()
                _OneBlasThread.limiter = None


def batch_parts(batch: int, macs_per_image: int, threads: int) -> int:
    """Into how many parts to cut a batch: at most one per thread and per
    image, each part with at least :data:`PART_MACS` multiply-accumulates."""
    return max(1, min(threads, batch, batch * macs_per_image // PART_MACS))


def head_start(numbers_per_image: list[int]) -> int:
    """The index of the head's first step, given each step's output size per
    image (numbers): after the last step above :data:`HEAD_NUMBERS`."""
    start = len(numbers_per_image)
    while start > 0 and numbers_per_image[start - 1] <= HEAD_NUMBERS:
        start -= 1
    return start


class PartsChoice:
    """Whether passes of one batch size run in parts, decided by timing them:
    the first :data:`TRIALS` passes of each way alternate (parts first: a
    single pass, as ``archdsl run`` makes, runs in parts), the first of
    each way being its warm-up (page faults, scratch buffers); then the way
    with the faster timed pass is kept for that batch size.  Safe to share
    between threads."""

    TRIALS = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trials: dict[tuple[int, int], list[tuple[int, float]]] = {}
        self._chosen: dict[tuple[int, int], int] = {}

    def parts(self, batch: int, candidate: int) -> int:
        """The parts of the next pass of ``batch`` images, ``candidate`` the
        most worth trying (:func:`batch_parts`)."""
        if candidate <= 1:
            return 1
        with self._lock:
            chosen = self._chosen.get((batch, candidate))
            if chosen is not None:
                return chosen
            return 1 if len(self._trials.get((batch, candidate), ())) % 2 else candidate

    def record(self, batch: int, candidate: int, parts: int, seconds: float) -> None:
        """A pass of ``batch`` images took ``seconds`` in ``parts`` parts."""
        if candidate <= 1:
            return
        key = (batch, candidate)
        with self._lock:
            if key in self._chosen:
                return
            trials = self._trials.setdefault(key, [])
            trials.append((parts, seconds))
            split = [time for used, time in trials if used > 1][1:]  # each way's first pass is its warm-up
            whole = [time for used, time in trials if used == 1][1:]
            if len(split) + len(whole) >= 2 * (self.TRIALS - 1) and split and whole:
                self._chosen[key] = candidate if min(split) < min(whole) else 1
                del self._trials[key]

    def chosen(self, batch: int, candidate: int) -> int | None:
        """The kept way for ``batch`` images (parts), or None while trying."""
        with self._lock:
            return self._chosen.get((batch, candidate)) if candidate > 1 else 1
