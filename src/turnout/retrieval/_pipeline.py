"""Threads that keep the cores busy: preparation beside inference, and inference streams.

PIL's decoders and resamplers, numpy and torch's kernels release the GIL, so threads
overlap image decoding and preprocessing with inference without copying pixels between
processes. On a CPU, a few concurrent inference streams with a share of the cores each
do more work than one stream with all of them: one batch's matrices are too small to
keep many cores equally busy.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Preparation threads: half the cores, at least one, leaving the rest to the model."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def default_streams(device: str) -> int:
    """Concurrent inference streams: one on an accelerator; on a CPU two to four."""
    cores = os.cpu_count() or 1
    if device != "cpu" or cores < 2:
        return 1
    return min(4, max(2, cores // 4))


def prepared_in_order(
    items: Iterable[T],
    prepare: Callable[[int, T], R],
    *,
    workers: int,
    lookahead: int,
) -> Iterator[R]:
    """Yield `prepare(i, item)` for each item in order, at most `lookahead` ahead of the consumer.

    With `workers == 0` everything runs on the calling thread (the serial baseline). An
    exception from `prepare` is raised when its item is reached, in order, and the work
    queued behind it is cancelled.
    """
    if workers <= 0:
        for index, item in enumerate(items):
            yield prepare(index, item)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="turnout-worker")
    pending: deque[Future[R]] = deque()
    upcoming = enumerate(items)
    # An error while drawing the next item (from an upstream pipeline) waits until the
    # items before it have been yielded, so the caller keeps the work that finished.
    failure: BaseException | None = None

    def submit_next() -> None:
        nonlocal failure
        if failure is not None:
            return
        try:
            nxt = next(upcoming, None)
        except Exception as exc:
            failure = exc
            return
        if nxt is not None:
            pending.append(pool.submit(prepare, *nxt))

    try:
        for _ in range(max(1, lookahead)):
            submit_next()
        while pending:
            result = pending.popleft().result()
            submit_next()
            yield result
        if failure is not None:
            raise failure
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def batched(results: Iterator[R], size: int) -> Iterator[list[R]]:
    """Group an iterator into lists of `size` (the last may be shorter)."""
    batch: list[R] = []
    for result in results:
        batch.append(result)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_streams(
    batches: Iterable[T], forward: Callable[[T], R], *, streams: int, threads: int
) -> Iterator[R]:
    """`forward(batch)` for each batch in order, on `streams` threads sharing `threads` cores.

    Each batch starts with the cores divided among the batches running then, so the last
    batch, running alone, gets them all. torch's thread count is restored at the end.
    """
    if streams <= 1:
        for batch in batches:
            yield forward(batch)
        return
    import torch

    running = 0
    lock = threading.Lock()

    def run(_index: int, batch: T) -> R:
        nonlocal running
        with lock:
            running += 1
            share = max(1, threads // running)
        torch.set_num_threads(share)
        try:
            return forward(batch)
        finally:
            with lock:
                running -= 1

    try:
        yield from prepared_in_order(batches, run, workers=streams, lookahead=streams)
    finally:
        torch.set_num_threads(threads)
