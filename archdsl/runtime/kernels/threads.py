"""The kernels' threads: the kernels that NumPy runs without BLAS
(depthwise convolutions, fused activations and other elementwise passes,
pooling) split their work into parts, one per thread, and run the parts
at once.  NumPy releases the interpreter lock inside its loops, so the
parts run in parallel as long as each is long enough that its few Python
calls are a small share of it.

How many threads: :func:`set_num_threads`, else ``OPENBLAS_NUM_THREADS``
or ``OMP_NUM_THREADS`` (the variables that set NumPy's BLAS threads, so
that one setting covers both), else the CPUs this process may run on.
BLAS's own threads are OpenBLAS's: a matrix multiply is never split here.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

#: A part's work below which splitting costs more than it saves, counted
#: as bytes moved (an array's size times the passes over it): handing a
#: part to another thread and its interpreter-lock hand-overs cost 20-100 us
#: here, about what a 4 MB move takes (a 1 MB SiLU, 4 passes, ran as fast
#: in two parts as in one; 4.8 MB, 1.8x faster: measured, 2-core Xeon).
_PART_BYTES = 4 << 20

class _Pool:
    """The thread count, and the pool of threads that run the parts other
    than the first (made on first use, once per process)."""

    threads: int | None = None
    executor: ThreadPoolExecutor | None = None
    workers = 0
    pid = -1


_inside = threading.local()


def _threads_from_environment():
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(count):
    """Makes the kernels use ``count`` threads (1: the calling thread alone)."""
    count = int(count)
    if count < 1:
        raise ValueError(f"a thread count is at least 1, not {count}")
    _Pool.threads = count


def get_num_threads():
    """How many threads the kernels use (see the module's docstring)."""
    if _Pool.threads is None:
        _Pool.threads = _threads_from_environment()
    return _Pool.threads


def _parts(items, work_bytes):
    """Into how many parts to split ``items`` units of work (blocks, rows)
    that move ``work_bytes`` bytes in all: at most one per thread and per
    item, and each part at least :data:`_PART_BYTES`; 1 inside a part."""
    if getattr(_inside, "part", False):
        return 1
    return max(1, min(get_num_threads(), items, int(work_bytes) // _PART_BYTES))


def _spans(count, parts):
    """``range(count)`` cut into ``parts`` contiguous ``(start, stop)``
    spans whose lengths differ by at most one."""
    return [(count * part // parts, count * (part + 1) // parts) for part in range(parts)]


def _cut(shape, work_bytes, keep=1):
    """How to split an array of ``shape`` whose processing moves
    ``work_bytes`` bytes over the threads: ``(axis, spans)``, ``spans`` the
    parts' ``(start, stop)`` along ``axis``, the first axis long enough
    among all but the last ``keep`` ones; None when one part is best."""
    parts = _parts(max(shape[:len(shape) - keep], default=1), work_bytes)
    if parts == 1:
        return None
    axis = next(axis for axis in range(len(shape) - keep) if shape[axis] >= parts)
    return axis, _spans(shape[axis], parts)


def _run_part(body, part):
    _inside.part = True
    try:
        return body(part)
    finally:
        _inside.part = False


def _parallel(parts, body):
    """``[body(0), ..., body(parts - 1)]``, the parts run at once: part 0 on
    the calling thread, the others on the pool's threads.  Each part must
    write only memory of its own.  The first error of a part is raised once
    every part is done."""
    if parts <= 1:
        return [body(0)]
    pool = _Pool.executor
    if pool is None or _Pool.pid != os.getpid() or _Pool.workers < parts - 1:
        # (A forked child has its parent's pool object but not its threads.)
        if pool is not None and _Pool.pid == os.getpid():
            pool.shutdown(wait=False)
        pool = _Pool.executor = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="archdsl-kernel")
        _Pool.workers, _Pool.pid = parts - 1, os.getpid()
    futures = [pool.submit(_run_part, body, part) for part in range(1, parts)]
    try:
        first = _run_part(body, 0)
    finally:
        results = []
        error = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as raised:  # noqa: BLE001 - re-raised below, after every part ended
                error = error or raised
    if error is not None:
        raise error
    return [first, *results]
