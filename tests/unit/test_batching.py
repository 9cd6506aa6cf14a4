"""The serving Batcher: requests queued together share one model call, each gets its own
answer (or its batch's error), and a client alone never waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mlops.serving.batching import Batcher


class Recorder:
    """A ``run`` that records its calls, answers item * 10 and can be held mid-call."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.entered.set()
        assert self.release.wait(30)
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {items}")
        return [item * 10 for item in items]


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = work()
        except Exception as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def behind_a_held_call(
    batcher: Batcher[int, int], run: Recorder, first: tuple[Any, ...], later: list[tuple[Any, ...]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit ``first`` and hold its call; queue each of ``later`` (item, size[, peer]) in
    order behind it; release; every caller's outcome once all have returned."""
    run.release.clear()
    thread, first_out = in_thread(lambda: batcher.submit(*first))
    assert run.entered.wait(30)
    threads, outs = [thread], []
    for queued, arguments in enumerate(later, 1):
        started, out = in_thread(lambda a=arguments: batcher.submit(*a))
        threads.append(started)
        outs.append(out)
        wait_until(lambda n=queued: batcher.queued == n)
    run.release.set()
    for started in threads:
        started.join(30)
    return first_out, outs


def test_requests_queued_during_a_call_share_the_next_one() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=0.0)
    later = [(n, 1, f"peer{n}") for n in (2, 3, 4)]
    first_out, outs = behind_a_held_call(batcher, run, (1, 1, "a"), later)
    assert run.calls[0] == [1]
    assert len(run.calls) == 2
    assert sorted(run.calls[1]) == [2, 3, 4]
    assert first_out["result"] == 10
    assert [out["result"] for out in outs] == [20, 30, 40]


def test_a_client_alone_never_waits() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=60.0)
    started = time.monotonic()
    assert [batcher.submit(n, 1, "only") for n in range(5)] == [0, 10, 20, 30, 40]
    assert time.monotonic() - started < 10  # one wait_s would be 60 s
    assert run.calls == [[n] for n in range(5)]


def test_a_recent_client_is_waited_for_and_scored_with_the_next() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=60.0)
    assert batcher.submit(1, 1, "b") == 10  # b is now a recent client
    started = time.monotonic()
    waiting, out = in_thread(lambda: batcher.submit(2, 1, "a"))
    wait_until(lambda: len(run.calls) == 1 and batcher.queued == 1)
    time.sleep(0.05)
    assert len(run.calls) == 1, "a scored alone although b was recent"
    assert batcher.submit(3, 1, "b") == 30
    waiting.join(30)
    assert out["result"] == 20
    assert run.calls[1] == [2, 3]
    assert time.monotonic() - started < 10  # stopped waiting when b came, not at 60 s


def test_a_recent_client_that_does_not_come_costs_at_most_the_wait() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=0.2, horizon_s=60)
    batcher.submit(1, 1, "gone")
    started = time.monotonic()
    assert batcher.submit(2, 1, "here") == 20
    assert 0.2 <= time.monotonic() - started < 5


def test_a_client_stops_being_waited_for_after_the_horizon() -> None:
    now = [0.0]
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=60.0, horizon_s=1.0, clock=lambda: now[0])
    batcher.submit(1, 1, "old")
    now[0] = 1.5
    assert batcher.submit(2, 1, "new") == 20  # would wait forever on the frozen clock


def test_a_batch_holds_at_most_max_size_rows_but_a_big_item_goes_alone() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=3, wait_s=0.0)
    sizes = {1: 2, 2: 1, 3: 1, 4: 5}
    behind_a_held_call(batcher, run, (0, 1), list(sizes.items()))  # queued in this order
    assert run.calls == [[0], [1, 2], [3], [4]]


def test_a_failed_batch_fails_each_of_its_requests_and_not_the_next() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=64, wait_s=0.0)
    _, bad = behind_a_held_call(batcher, run, (1, 1), [(-1, 1), (2, 1)])
    assert all(isinstance(out["error"], ValueError) for out in bad)
    assert batcher.submit(5, 1) == 50


def test_many_threads_each_get_their_own_answer() -> None:
    run = Recorder()
    batcher = Batcher(run, max_size=8, wait_s=0.001)
    results: dict[int, int] = {}

    def client(index: int) -> None:
        for n in range(index * 100, index * 100 + 50):
            results[n] = batcher.submit(n, 1, index)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {n: n * 10 for i in range(6) for n in range(i * 100, i * 100 + 50)}
    assert sum(len(call) for call in run.calls) == 300
    assert max(len(call) for call in run.calls) <= 8


def test_the_result_count_must_match() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: [], max_size=4, wait_s=0.0)
    with pytest.raises(RuntimeError, match="a batch of 1 got 0 results"):
        batcher.submit(1, 1)


def test_an_exception_given_for_one_item_is_raised_for_it_alone() -> None:
    def run(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"no {item}") if item < 0 else item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(run, max_size=64, wait_s=0.0)
    with pytest.raises(ValueError, match="no -1"):
        batcher.submit(-1, 1)
    assert batcher.submit(2, 1) == 20
