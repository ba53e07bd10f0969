"""The one shape of progress bar every long job shows.

Bars go to stderr so that `--json` output on stdout stays clean. Every bar is
"description, bar, done/total, (the job's own columns), elapsed (, remaining)";
only the job's own columns differ.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def stderr_progress(
    show: bool, *extra: ProgressColumn, eta: bool = True, transient: bool = False
) -> Progress:
    """A progress bar on stderr, drawn only when `show`; `extra` columns go before the times.

    `eta` adds a time-remaining column; `transient` erases the bar when it ends.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        *([TimeRemainingColumn()] if eta else []),
        console=Console(stderr=True),
        disable=not show,
        transient=transient,
    )
