"""The runtime's threads (archdsl/runtime/schedule.py): the thread count,
how a range is cut into parts, that parts run at once on other threads,
and that errors and forks are handled."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from archdsl.cli import main
from archdsl.runtime import get_num_threads, schedule, set_num_threads

ROOT = Path(__file__).resolve().parent.parent


@given(st.integers(0, 500), st.integers(1, 16))
def test_spans_cover_the_range_in_near_equal_contiguous_pieces(count, parts):
    spans = schedule.spans(count, parts)
    assert len(spans) == parts
    assert spans[0][0] == 0 and spans[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    lengths = [stop - start for start, stop in spans]
    assert max(lengths) - min(lengths) <= 1


def test_parts_run_on_other_threads_and_return_in_order():
    set_num_threads(3)
    try:
        barrier = threading.Barrier(3, timeout=30)  # passes only if the three parts run at once

        def body(part):
            barrier.wait()
            return part, threading.get_ident()

        results = schedule.run_parts(3, body)
    finally:
        set_num_threads(1)
    assert [part for part, _ in results] == [0, 1, 2]
    assert results[0][1] == threading.get_ident()
    assert len({ident for _, ident in results}) == 3


def test_an_error_in_a_part_is_raised_after_every_part_ended():
    set_num_threads(2)
    ended = []

    def body(part):
        if part == 1:
            raise ZeroDivisionError("part 1")
        threading.Event().wait(0.2)
        ended.append(part)

    try:
        with pytest.raises(ZeroDivisionError, match="part 1"):
            schedule.run_parts(2, body)
    finally:
        set_num_threads(1)
    assert ended == [0]


def _child_runs_parts(queue):
    queue.put(schedule.run_parts(2, lambda part: part * 10))


def test_a_forked_child_makes_its_own_pool():
    set_num_threads(2)
    try:
        schedule.run_parts(2, lambda part: part)  # the parent's pool exists
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_child_runs_parts, args=(queue,))
        child.start()
        child.join(60)
        assert child.exitcode == 0  # None: hung on the parent's threads, which the child does not have
        assert queue.get(timeout=5) == [0, 10]
    finally:
        set_num_threads(1)


@pytest.mark.parametrize(("environment", "expected"), [
    ({"OPENBLAS_NUM_THREADS": "3"}, "3"),
    ({"OMP_NUM_THREADS": "5"}, "5"),
    ({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, "2"),
    ({"OPENBLAS_NUM_THREADS": "none"}, str(len(os.sched_getaffinity(0)))),
    ({}, str(len(os.sched_getaffinity(0)))),
])
def test_the_default_count_follows_blas_variables_then_the_cpus(environment, expected):
    env = {key: value for key, value in os.environ.items() if key not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", "from archdsl.runtime import get_num_threads; print(get_num_threads())"],
                          env={**env, **environment, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == expected


def test_a_thread_count_is_positive():
    with pytest.raises(ValueError, match="at least 1"):
        set_num_threads(0)


def test_run_takes_a_thread_count(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((1, 1, 32, 32), dtype=np.float32))
    previous = get_num_threads()
    try:
        assert main(["run", str(ROOT / "models" / "lenet5.cnn"), "--input", str(x), "-o", str(tmp_path / "y.npy"),
                     "--threads", "2", "--profile", "--profile-runs", "1"]) == 0
        assert get_num_threads() == 2
    finally:
        set_num_threads(previous)
    assert "float32, 2 thread(s): the fastest of 1 profiled pass(es)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(ROOT / "models" / "lenet5.cnn"), "--input", str(x), "-o", str(tmp_path / "y.npy"),
              "--threads", "0"])
    assert exit_info.value.code == 2
