"""How a forward pass uses the threads: a batch of several images is cut
into parts (one per thread) that run the network at once, each on one
thread, with BLAS held to one thread meanwhile; the parts are joined
before the network's head.  A pass that is not cut runs its NumPy-only
kernels on the calling thread and its matrix multiplies on BLAS's threads.

How many threads: :func:`set_num_threads`, else ``OPENBLAS_NUM_THREADS``
or ``OMP_NUM_THREADS`` (the variables that set NumPy's BLAS threads, so
that one setting covers both), else the CPUs this process may run on.

Why whole parts rather than each kernel cut over the threads: OpenBLAS's
idle threads keep spinning for a while after every matrix multiply, so
the NumPy-only kernels (depthwise convolutions, activations, pooling,
norms) that run between multiplies find the second core busy.  Those
kernels cut into two parts on two threads (bit-identical results) ran no
faster: 0.92-1.04x of one thread in one process (2-core Xeon; batch 1 and
8; EfficientNet-B0, ConvNeXt-T, DenseNet-121, MobileNetV2, ResNet-50,
RegNetX, ShuffleNetV2, SqueezeNet, AlexNet), and were taken out again.
With one BLAS thread per part, every kernel, multiplies included, runs on
both cores (``benchmarks/runtime.py``; docs/runtime.md).

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
1.4-1.5x for EfficientNet-B0 and ResNet-18).  No static count predicted
which side wins, so each model measures it (:class:`PartsChoice`): for
each batch size, its first passes alternate between parts and whole, and
the faster way is kept.

BLAS's thread count is set with threadpoolctl, the library scikit-learn
uses for the same purpose: it finds the BLAS that NumPy loaded (OpenBLAS,
MKL, BLIS) and calls its own setter; NumPy has none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

#: Numbers per image of a step's output at or below which it may be part of the head.
HEAD_NUMBERS = 16384
#: Multiply-accumulates a part must have at least.
PART_MACS = 300_000_000


class _Pool:
    """The thread count, and the threads that run the parts other than the
    first (made on first use, once per process)."""

    threads: int | None = None
    executor: ThreadPoolExecutor | None = None
    workers = 0
    pid = -1


def _threads_from_environment() -> int:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(count: int) -> None:
    """Makes forward passes use ``count`` threads (1: no parts)."""
    count = int(count)
    if count < 1:
        raise ValueError(f"a thread count is at least 1, not {count}")
    _Pool.threads = count


def get_num_threads() -> int:
    """How many threads forward passes use (see the module's docstring)."""
    if _Pool.threads is None:
        _Pool.threads = _threads_from_environment()
    return _Pool.threads


def spans(count: int, parts: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into ``parts`` contiguous ``(start, stop)``
    spans whose lengths differ by at most one."""
    return [(count * part // parts, count * (part + 1) // parts) for part in range(parts)]


def run_parts(parts: int, body: Callable[[int], T]) -> list[T]:
    """``[body(0), ..., body(parts - 1)]``, the parts run at once: part 0 on
    the calling thread, the others on the pool's threads.  Each part must
    write only memory of its own.  A part's error is raised once every part
    has ended."""
    if parts <= 1:
        return [body(0)]
    pool = _Pool.executor
    if pool is None or _Pool.pid != os.getpid() or _Pool.workers < parts - 1:
        # (A forked child has its parent's pool object but not its threads.)
        if pool is not None and _Pool.pid == os.getpid():
            pool.shutdown(wait=False)
        pool = _Pool.executor = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="archdsl-part")
        _Pool.workers, _Pool.pid = parts - 1, os.getpid()
    futures = [pool.submit(body, part) for part in range(1, parts)]
    try:
        first = body(0)
    finally:
        results: list[T] = []
        error: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as raised:  # noqa: BLE001 - raised below, once every part has ended
                error = error or raised
    if error is not None:
        raise error
    return [first, *results]


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
