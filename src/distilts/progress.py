"""The one progress bar of the distill stage (teacher cache fill, student training): rich, one task
at a time, silent when disabled."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Bar:
    """`with Bar(enabled) as bar: bar.start(...); bar.advance(...)`; every method is a no-op when disabled."""

    def __init__(self, enabled: bool, *, stderr: bool = True) -> None:
        self.enabled, self.stderr = enabled, stderr
        self.progress: Progress | None = None
        self.task: Any = None

    def __enter__(self) -> Bar:
        if self.enabled:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=Console(stderr=self.stderr),
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start(self, description: str, total: int, completed: int = 0) -> None:
        """A new task in place of the previous one."""
        if self.progress is not None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(description, total=total, completed=completed, note="")

    def advance(self, n: int = 1, note: str | None = None) -> None:
        if self.progress is not None:
            if note is None:
                self.progress.update(self.task, advance=n)
            else:
                self.progress.update(self.task, advance=n, note=note)

    def print(self, text: str) -> None:
        """A line above the bar (nothing when disabled)."""
        if self.progress is not None:
            self.progress.console.print(text)
