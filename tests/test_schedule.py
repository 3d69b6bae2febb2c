"""A forward pass run as parts of the batch on several threads
(archdsl/runtime/schedule.py): where the head starts, when a batch is cut,
that BLAS is held to one thread meanwhile and given back, and that a pass
in parts computes what the whole pass computes (golden: the same model run
whole on one thread; the parts run the same kernels on fewer images, so
only a matrix multiply's blocking may differ, in the last bits)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import archdsl
from archdsl.runtime import get_num_threads, schedule, set_num_threads
from archdsl.runtime import interpreter as interpreter_module

MODELS = Path(__file__).resolve().parent.parent / "models"

#: Two inputs (one read only by the head), two outputs (one of them before
#: the head), a residual add, and a head after global pooling.
TWO_WAYS = """
model TwoWays {
    input image: [3, 64, 64]
    input extra: [6]
    stem = image -> conv2d(8, 3, padding=1, bias=false) -> batchnorm2d -> relu
    body = stem -> conv2d(8, 3, padding=1) -> add(stem) -> relu
    side = body -> conv2d(4, 1)
    logits = body -> global_avgpool -> flatten -> concat(extra) -> fc: linear(5)
    output side
    output logits
}
"""


def blas_threads() -> int:
    return next(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads; every batch of two or more images worth cutting."""
    monkeypatch.setattr(schedule, "PART_MACS", 1)
    previous = get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(previous)


def test_the_head_is_the_steps_after_the_last_large_output():
    big, small = schedule.HEAD_NUMBERS + 1, schedule.HEAD_NUMBERS
    assert schedule.head_start([big, big, small, small, 10]) == 2
    assert schedule.head_start([big, small, big]) == 3  # a small output inside the body is no head
    assert schedule.head_start([small, small]) == 0
    assert schedule.head_start([]) == 0


@pytest.mark.parametrize(("name", "head"), [
    ("resnet18", ["global_avgpool", "flatten", "linear"]),
    # VGG's pooled features are 512x7x7 = 25,088 numbers: its head is the classifier alone
    ("vgg16", ["linear", "relu", "dropout", "linear", "relu", "dropout", "linear"]),
    ("unet", []),  # a segmentation network's output is an image: no head
])
def test_zoo_heads(name, head):
    plan = archdsl.compile(archdsl.load(MODELS / f"{name}.cnn").model()).plan
    assert [step.kind for step in plan.steps[plan.head:]] == head


def test_a_batch_is_cut_by_threads_images_and_work():
    macs = schedule.PART_MACS
    assert schedule.batch_parts(8, macs, 2) == 2
    assert schedule.batch_parts(8, macs, 4) == 4
    assert schedule.batch_parts(3, macs, 4) == 3  # one image per part at least
    assert schedule.batch_parts(1, macs, 2) == 1
    assert schedule.batch_parts(8, macs // 8, 2) == 1  # too little work for two parts
    assert schedule.batch_parts(8, macs, 1) == 1


def test_lenet_and_resnet_at_batch_8_on_two_threads():
    lenet = archdsl.compile(archdsl.load(MODELS / "lenet5.cnn").model())
    resnet = archdsl.compile(archdsl.load(MODELS / "resnet18.cnn").model())
    previous = get_num_threads()
    set_num_threads(2)
    try:
        assert lenet.batch_parts(8) == 1  # 0.4 million MACs an image: not worth a thread
        assert resnet.batch_parts(8) == 2
        assert resnet.batch_parts(1) == 1
    finally:
        set_num_threads(previous)


def test_parts_compute_what_the_whole_pass_computes(two_threads, monkeypatch):
    model = archdsl.loads(TWO_WAYS).model()
    net = archdsl.compile(model, seed=1)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((5, 3, 64, 64), dtype=np.float32)
    extra = rng.standard_normal((5, 6), dtype=np.float32)
    kept = image.copy(), extra.copy()
    cut = []
    original = interpreter_module.CompiledModel._run_parts
    monkeypatch.setattr(interpreter_module.CompiledModel, "_run_parts",
                        lambda self, arrays, parts: cut.append(parts) or original(self, arrays, parts))
    parts = net(image, extra)
    assert cut == [2]
    assert np.array_equal(image, kept[0]) and np.array_equal(extra, kept[1])  # the caller's arrays are not written
    set_num_threads(1)
    whole = net(image, extra)
    assert cut == [2]  # one thread: no parts
    assert parts.keys() == whole.keys() == {"side", "logits"}
    for name in whole:
        assert parts[name].shape == whole[name].shape and parts[name].flags.c_contiguous
        np.testing.assert_allclose(parts[name], whole[name], rtol=1e-6, atol=1e-6 * np.abs(whole[name]).max())


def test_resnet18_in_parts_matches_the_whole_pass():
    model = archdsl.load(MODELS / "resnet18.cnn").model()
    net = archdsl.compile(model, seed=0)
    assert net.plan.macs_per_image == 1_814_073_344  # the model file's golden MACs (torchvision's hooks)
    x = np.random.default_rng(1).standard_normal((3, 3, 224, 224), dtype=np.float32)
    previous = get_num_threads()
    try:
        set_num_threads(1)
        whole = net(x)
        set_num_threads(2)
        assert net.batch_parts(3) == 2
        parts = net(x)
    finally:
        set_num_threads(previous)
    np.testing.assert_allclose(parts, whole, rtol=1e-6, atol=1e-6 * np.abs(whole).max())
    # Small images: a 16x16x64 map is already no more than the head's 16,384 numbers an image, so
    # everything after the stem is head (its weights outweigh its activations), run whole.
    small = archdsl.compile(model, inputs={"image": (3, 64, 64)}).plan
    assert [step.kind for step in small.steps[:small.head]] == ["conv2d", "batchnorm2d", "relu"]


def test_blas_is_held_to_one_thread_in_the_parts_and_given_back(two_threads, monkeypatch):
    net = archdsl.compile(archdsl.loads(TWO_WAYS).model(), seed=1)
    seen = []
    original = interpreter_module.CompiledModel._run_steps

    def recording(self, values, steps, keep=False, times=None):
        seen.append((len(steps), blas_threads()))
        return original(self, values, steps, keep, times)

    monkeypatch.setattr(interpreter_module.CompiledModel, "_run_steps", recording)
    before = blas_threads()
    rng = np.random.default_rng(0)
    net(rng.standard_normal((4, 3, 64, 64), dtype=np.float32), rng.standard_normal((4, 6), dtype=np.float32))
    body, head = net.plan.head, len(net.plan.steps) - net.plan.head
    assert sorted(seen) == sorted([(body, 1), (body, 1), (head, before)])
    assert blas_threads() == before


def test_concurrent_passes_share_the_limit_and_give_it_back(two_threads):
    net = archdsl.compile(archdsl.loads(TWO_WAYS).model(), seed=1)
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal((n, 3, 64, 64), dtype=np.float32), rng.standard_normal((n, 6), dtype=np.float32))
              for n in (2, 3, 4, 5)]
    set_num_threads(1)
    expected = [net(*pair) for pair in inputs]
    set_num_threads(2)
    before = blas_threads()
    failures = []

    def run(index):
        for _ in range(10):
            got = net(*inputs[index])
            if not all(np.allclose(got[k], expected[index][k], rtol=1e-6, atol=1e-6) for k in got):
                failures.append(index)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    assert blas_threads() == before
    assert schedule._OneBlasThread.active == 0


def test_profiles_and_traces_run_whole(two_threads, monkeypatch):
    net = archdsl.compile(archdsl.loads(TWO_WAYS).model(), seed=1)
    monkeypatch.setattr(interpreter_module.CompiledModel, "_run_parts",
                        lambda *arguments: pytest.fail("a profiled or traced pass was cut"))
    rng = np.random.default_rng(0)
    image, extra = rng.standard_normal((4, 3, 64, 64), dtype=np.float32), rng.standard_normal((4, 6), dtype=np.float32)
    assert net.profile(image, extra).output.keys() == {"side", "logits"}
    assert "fc" in net.trace(image, extra)


def test_each_batch_size_keeps_the_way_its_timed_passes_found_faster():
    choice = schedule.PartsChoice()
    # parts first (a single pass runs in parts), then alternating; each way's first pass is a warm-up
    timings = {2: [9.0, 0.30, 0.31], 1: [0.5, 0.40, 0.38]}  # the parts' warm-up is the slowest pass of all
    for index in range(3):
        for parts in (2, 1):
            assert choice.chosen(8, 2) is None
            assert choice.parts(8, 2) == parts
            choice.record(8, 2, parts, timings[parts][index])
    assert choice.chosen(8, 2) == 2
    assert [choice.parts(8, 2) for _ in range(3)] == [2, 2, 2]
    choice.record(8, 2, 2, 100.0)  # later passes change nothing
    assert choice.chosen(8, 2) == 2
    # another batch size is measured on its own; here the whole pass wins
    for parts, seconds in ((3, 0.2), (1, 0.2), (3, 0.5), (1, 0.3), (3, 0.6), (1, 0.4)):
        assert choice.parts(6, 3) == parts
        choice.record(6, 3, parts, seconds)
    assert choice.chosen(6, 3) == 1 and choice.parts(6, 3) == 1
    # nothing to choose with one part
    assert choice.parts(1, 1) == 1 and choice.chosen(1, 1) == 1


def test_a_model_settles_after_its_trial_passes(two_threads):
    net = archdsl.compile(archdsl.loads(TWO_WAYS).model(), seed=1)
    rng = np.random.default_rng(0)
    image, extra = rng.standard_normal((4, 3, 64, 64), dtype=np.float32), rng.standard_normal((4, 6), dtype=np.float32)
    used = []
    for _ in range(2 * schedule.PartsChoice.TRIALS):
        assert net.parts_chosen(4) is None
        net(image, extra)
        used.append(net.last_parts)
    assert used == [2, 1] * schedule.PartsChoice.TRIALS
    chosen = net.parts_chosen(4)
    assert chosen in (1, 2)
    net(image, extra)
    assert net.last_parts == chosen
