"""Progress reporting for long evaluations: a protocol, a silent default and rich bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Task, TaskID

Advance = Callable[[int], None]


class EvalProgress(Protocol):
    """Opens one task per stage; the stage calls the returned function as items finish."""

    def task(self, description: str, total: int) -> AbstractContextManager[Advance]: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    """Reports nothing; what library callers get unless they ask."""

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        yield lambda _n: None

    def log(self, message: str) -> None:
        return None


class RichProgress:
    """rich progress bars with items per second, one per stage, kept on screen when done."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Advance]:
        progress = self._progress
        task_id = progress.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task_id, n)
            speed = self._task(task_id).speed
            if speed:
                progress.update(task_id, rate=f"{speed:,.1f}/s")

        try:
            yield advance
        finally:
            task = self._task(task_id)
            elapsed = task.finished_time or task.elapsed or 0.0
            done = task.completed
            rate = f"{done / elapsed:,.1f}/s" if elapsed > 0 and done else ""
            progress.update(task_id, rate=rate)
            progress.stop_task(task_id)

    def _task(self, task_id: TaskID) -> Task:
        return next(t for t in self._progress.tasks if t.id == task_id)

    def log(self, message: str) -> None:
        self._progress.console.print(message)
