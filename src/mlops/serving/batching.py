"""Dynamic batching: the requests a worker holds at once are scored in one model call.

A one-row predict costs a scikit-learn pipeline about as much as a four-row one (input
checks and per-step overhead, not arithmetic, dominate; docs/performance.md). A worker
that scores one request at a time makes each waiting request pay for every request ahead
of it; the Batcher
instead lets the first waiting request score all those queued with it (``run`` is called
with their items, in arrival order, and returns one result per item), as Triton's dynamic
batcher, TorchServe's ``max_batch_delay`` and Ray Serve's ``@serve.batch`` do.

It also waits, up to ``wait_s``, for the clients that sent a request within the last
``horizon_s`` and have none queued: under steady load their next request arrives within
a round trip, and waiting for it keeps their requests in step (scored together) instead
of alternating (each waiting for the other's turn). A client alone never waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(eq=False)
class _Job(Generic[Item, Result]):
    item: Item
    size: int
    peer: Hashable | None
    done: bool = False  # guarded by Batcher._changed
    result: Result | BaseException | None = None  # an exception is raised to the caller


class Batcher(Generic[Item, Result]):
    """One ``run`` at a time; each call takes every queued item, up to ``max_size``
    rows (a larger item goes alone). ``run`` returns one result per item, or an
    exception for an item that alone should fail."""

    def __init__(
        self,
        run: Callable[[list[Item]], Sequence[Result | BaseException]],
        *,
        max_size: int,
        wait_s: float,
        horizon_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._max_size = max_size
        self._wait_s = wait_s
        self._horizon_s = horizon_s
        self._clock = clock
        self._changed = threading.Condition()  # guards everything below
        self._running = False  # a thread is gathering or scoring a batch
        self._queue: list[_Job[Item, Result]] = []
        self._seen: dict[Hashable, float] = {}  # client -> when it last sent a request

    def submit(self, item: Item, size: int, peer: Hashable | None = None) -> Result:
        """``run``'s result for ``item`` (``size`` rows, from client ``peer``), scored
        with whatever is queued with it. Raises the result if ``run`` gave an exception
        for this item, and ``run``'s own exception if the whole batch failed."""
        job: _Job[Item, Result] = _Job(item, size, peer)
        with self._changed:
            self._queue.append(job)
            if peer is not None:
                self._seen[peer] = self._clock()
            self._changed.notify_all()
        while True:
            with self._changed:  # until this job is scored, or no one is scoring
                while self._running and not job.done:
                    self._changed.wait()
                if job.done:
                    break
                self._running = True
            batch: list[_Job[Item, Result]] = []
            try:
                batch = self._gather()
                self._score(batch)
            finally:
                with self._changed:
                    for scored in batch:
                        scored.done = True
                    self._running = False
                    self._changed.notify_all()
        if isinstance(job.result, BaseException):
            raise job.result
        return job.result  # type: ignore[return-value]

    @property
    def queued(self) -> int:
        with self._changed:
            return len(self._queue)

    def _gather(self) -> list[_Job[Item, Result]]:
        """The next batch: the queue's head, once no recent client is still to come
        (or the batch is full, or ``wait_s`` has passed)."""
        deadline = self._clock() + self._wait_s
        with self._changed:
            while True:
                now = self._clock()
                if sum(job.size for job in self._queue) >= self._max_size or now >= deadline:
                    break
                self._seen = {p: t for p, t in self._seen.items() if now - t <= self._horizon_s}
                if not self._seen.keys() - {job.peer for job in self._queue}:
                    break
                self._changed.wait(deadline - now)
            batch: list[_Job[Item, Result]] = []
            rows = 0
            for job in self._queue:
                if batch and rows + job.size > self._max_size:
                    break
                batch.append(job)
                rows += job.size
            del self._queue[: len(batch)]
        return batch

    def _score(self, batch: list[_Job[Item, Result]]) -> None:
        """Each job's result, or the exception every job of a failed batch gets."""
        try:
            results = self._run([job.item for job in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
        except BaseException as exc:  # each request answers for itself: raised in its thread
            for job in batch:
                job.result = exc
            return
        for job, result in zip(batch, results, strict=True):
            job.result = result
