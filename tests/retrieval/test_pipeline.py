"""Preparation threads and inference streams: order, errors in order, torch threads restored."""

from __future__ import annotations

import threading
import time

import pytest

from turnout.retrieval._pipeline import batched, default_streams, in_streams, prepared_in_order


def slow_square(index: int, value: int) -> int:
    time.sleep(0.002 * ((7 * index) % 5))  # finish out of order
    return value * value


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_results_come_in_order(workers: int) -> None:
    got = list(prepared_in_order(range(20), slow_square, workers=workers, lookahead=6))
    assert got == [v * v for v in range(20)]


def test_an_error_arrives_at_its_item_after_the_ones_before() -> None:
    def fail_at_five(index: int, value: int) -> int:
        if value == 5:
            raise ValueError("five")
        return value

    seen = []
    with pytest.raises(ValueError, match="five"):
        for value in prepared_in_order(range(10), fail_at_five, workers=3, lookahead=4):
            seen.append(value)
    assert seen == [0, 1, 2, 3, 4]


def test_an_upstream_error_waits_for_finished_work() -> None:
    def source():  # type: ignore[no-untyped-def]
        yield from (1, 2, 3)
        raise OSError("upstream")

    seen = []
    with pytest.raises(OSError, match="upstream"):
        for value in prepared_in_order(source(), lambda _i, v: v, workers=2, lookahead=8):
            seen.append(value)
    assert seen == [1, 2, 3]


def test_batched_keeps_the_tail() -> None:
    assert list(batched(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_streams_run_concurrently_and_restore_torch_threads() -> None:
    import torch

    before = torch.get_num_threads()
    names: set[str] = set()

    def forward(batch: list[int]) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.01)
        return sum(batch)

    batches = [[i, i + 1] for i in range(0, 12, 2)]
    got = list(in_streams(batches, forward, streams=3, threads=before))
    assert got == [sum(b) for b in batches]
    assert len(names) > 1 and threading.current_thread().name not in names
    assert torch.get_num_threads() == before


def test_one_stream_on_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_streams("cuda") == 1 and default_streams("mps") == 1
    for cores, streams in ((1, 1), (2, 2), (8, 2), (12, 3), (16, 4), (64, 4)):
        monkeypatch.setattr("os.cpu_count", lambda cores=cores: cores)
        assert default_streams("cpu") == streams
