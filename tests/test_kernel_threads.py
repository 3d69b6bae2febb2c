"""The kernels' threads (archdsl/runtime/kernels/threads.py): how work is
cut into parts, that parts run on other threads, that errors and forks are
handled, and that a kernel split over threads computes exactly what it
computes on one (each number's operations are the same, so the golden
figure is the one-thread result itself, bit for bit)."""

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
from archdsl.runtime import get_num_threads, set_num_threads
from archdsl.runtime.kernels import activation, conv, threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def counted_parts(monkeypatch):
    """Two threads, and the part counts of every ``_parallel`` call."""
    calls: list[int] = []
    original = threads._parallel

    def counting(parts, body):
        calls.append(parts)
        return original(parts, body)

    for module in (threads, activation, conv):
        monkeypatch.setattr(module, "_parallel", counting)
    previous = get_num_threads()
    set_num_threads(2)
    yield calls
    set_num_threads(previous)


@given(st.integers(0, 500), st.integers(1, 16))
def test_spans_cover_the_range_in_near_equal_contiguous_pieces(count, parts):
    spans = threads._spans(count, parts)
    assert len(spans) == parts
    assert spans[0][0] == 0 and spans[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    lengths = [stop - start for start, stop in spans]
    assert max(lengths) - min(lengths) <= 1


def test_parts_need_enough_work_and_items():
    set_num_threads(4)
    try:
        assert threads._parts(100, threads._PART_BYTES - 1) == 1  # too little work for two parts
        assert threads._parts(100, 2 * threads._PART_BYTES) == 2
        assert threads._parts(100, 100 * threads._PART_BYTES) == 4  # one per thread at most
        assert threads._parts(3, 100 * threads._PART_BYTES) == 3  # one per item at most
        assert threads._cut((1, 56, 56, 144), 100 * threads._PART_BYTES) == (1, [(0, 14), (14, 28), (28, 42),
                                                                                  (42, 56)])
        assert threads._cut((3, 2), 100 * threads._PART_BYTES) == (0, [(0, 1), (1, 2), (2, 3)])  # not the last axis
    finally:
        set_num_threads(1)


def test_parts_run_on_other_threads_and_return_in_order():
    set_num_threads(3)
    try:
        barrier = threading.Barrier(3, timeout=30)  # passes only if the three parts run at once

        def body(part):
            barrier.wait()
            return part, threading.get_ident()

        results = threads._parallel(3, body)
    finally:
        set_num_threads(1)
    assert [part for part, _ in results] == [0, 1, 2]
    assert results[0][1] == threading.get_ident()
    assert len({ident for _, ident in results}) == 3


def test_a_part_splits_no_further():
    set_num_threads(2)
    try:
        inner = threads._parallel(2, lambda part: threads._parts(100, 100 * threads._PART_BYTES))
    finally:
        set_num_threads(1)
    assert inner == [1, 1]
    assert threads._parts(100, 100 * threads._PART_BYTES) == 1  # one thread set: one part


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
            threads._parallel(2, body)
    finally:
        set_num_threads(1)
    assert ended == [0]


def _child_runs_parts(queue):
    queue.put(threads._parallel(2, lambda part: part * 10))


def test_a_forked_child_makes_its_own_pool():
    set_num_threads(2)
    try:
        threads._parallel(2, lambda part: part)  # the parent's pool exists
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


def _both(function):
    set_num_threads(1)
    one = function()
    set_num_threads(2)
    two = function()
    return one, two


@pytest.mark.parametrize(("batch", "channels", "size", "kernel", "stride"), [
    (8, 144, 56, 3, 1), (1, 144, 56, 3, 1), (8, 96, 28, 5, 2), (2, 96, 56, 7, 1)])
@pytest.mark.parametrize("activation_name", [None, "silu", "relu6"])
def test_depthwise_on_two_threads_is_bit_identical(counted_parts, batch, channels, size, kernel, stride,
                                                   activation_name):
    rng = np.random.default_rng(batch + size)
    x = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
    w = rng.standard_normal((channels, 1, kernel, kernel), dtype=np.float32)
    b = rng.standard_normal(channels, dtype=np.float32)
    residual = None
    if stride == 1:
        residual = rng.standard_normal((batch, channels, size, size), dtype=np.float32)

    def run():
        return conv.conv(x, w, b, stride=stride, padding=kernel // 2, groups=channels, activation=activation_name,
                         residual=residual, scratch={})

    one, two = _both(run)
    assert max(counted_parts) == 2  # the work was split
    assert np.array_equal(one, two)


@pytest.mark.parametrize("activation_name", ["silu", "hardswish", "relu"])
def test_pointwise_convolution_epilogue_on_two_threads_is_bit_identical(counted_parts, activation_name):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 96, 56, 56), dtype=np.float32)
    w = rng.standard_normal((192, 96, 1, 1), dtype=np.float32)
    b = rng.standard_normal(192, dtype=np.float32)
    residual = rng.standard_normal((2, 192, 56, 56), dtype=np.float32)
    one, two = _both(lambda: conv.conv(x, w, b, activation=activation_name, residual=residual))
    assert max(counted_parts) == 2
    assert np.array_equal(one, two)


@pytest.mark.parametrize("kernel", [activation.silu, activation.sigmoid, activation.hardswish, activation.hardsigmoid,
                                    activation.gelu])
def test_elementwise_kernels_on_two_threads_are_bit_identical(counted_parts, kernel):
    x = np.random.default_rng(2).standard_normal((4, 64, 64, 96), dtype=np.float32) * 4
    view = x.transpose(0, 3, 1, 2)  # channels-last memory, as convolutions leave it
    one, two = _both(lambda: kernel(view))
    assert max(counted_parts) == 2
    assert np.array_equal(one, two)
    assert one.strides == view.strides


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
