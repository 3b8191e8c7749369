"""One progress bar for the long jobs (world generation, info files, conversion).

Every long job of the package reports through :class:`ProgressBar`: one line
on stderr, redrawn in place, in one format::

    synthetic world:  45%|#########           | 54/120 frame [00:12<00:14, 4.41 frame/s]

(the description, percentage, count, elapsed time, remaining time and rate),
and, when the job ends, one INFO log line with the count and the time
(``synthetic world: 120 frame in 27.3 s``). Routine progress never goes to
WARNING. The transfer experiment, whose steps are subprocesses of minutes to
hours, prints one line per step with the overall count and an ETA instead
(:func:`eta_seconds`).
"""
import logging
import sys
import time
from typing import Iterable, Optional, Sequence

logger = logging.getLogger(__name__)

#: The bar's format (tqdm's ``bar_format``), the same for every job.
BAR_FORMAT = ('{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} {unit} '
              '[{elapsed}<{remaining}, {rate_fmt}]')


class ProgressBar:
    """A counted progress bar (tqdm, :data:`BAR_FORMAT`) and a closing INFO line.

    Use as a context manager (or call :meth:`close`)::

        with ProgressBar(total=len(frames), desc='synthetic world', unit='frame') as bar:
            for frame in frames:
                ...
                bar.update()

    Args:
        total (int): Units of work.
        desc (str): What is being done (start of the line).
        unit (str): Name of one unit (``frame``, ``sample``, ``tensor``).
        file (file, optional): Stream of the bar (default ``sys.stderr``).
        disable (bool): No bar (the INFO line is still logged).
    """

    def __init__(self, total: int, desc: str, unit: str, file=None,
                 disable: bool = False) -> None:
        from tqdm import tqdm
        self.total, self.desc, self.unit = int(total), desc, unit
        self.count = 0
        self._begin = time.monotonic()
        self._bar = tqdm(total=self.total, desc=desc, unit=unit, bar_format=BAR_FORMAT,
                         file=file if file is not None else sys.stderr, disable=disable,
                         dynamic_ncols=False, ncols=100, mininterval=0.5)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.count += int(n)
        self._bar.update(int(n))

    def close(self) -> None:
        """End the bar; log ``{desc}: {count} {unit} in {s} s`` at INFO."""
        if self._bar is None:
            return
        self._bar.close()
        self._bar = None
        logger.info('%s: %d %s in %.1f s', self.desc, self.count, self.unit,
                    time.monotonic() - self._begin)

    def __enter__(self) -> 'ProgressBar':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable, desc: str, unit: str, total: Optional[int] = None,
          disable: bool = False, file=None):
    """Iterate ``items`` under a :class:`ProgressBar` (one unit per item).

    Args:
        items (Iterable): What to iterate.
        desc (str), unit (str), disable (bool), file: See :class:`ProgressBar`.
        total (int, optional): Number of items (default ``len(items)``).

    Yields:
        The items of ``items``.
    """
    total = len(items) if total is None else total
    with ProgressBar(total, desc, unit, file=file, disable=disable) as bar:
        for item in items:
            yield item
            bar.update()


def eta_seconds(finished_walls: Sequence[float], remaining: int, jobs: int = 1) -> Optional[float]:
    """Estimated time left: the mean wall time of the finished steps per remaining step.

    ``mean(finished_walls) * remaining / jobs`` (steps run ``jobs`` at a
    time). Steps skipped because an earlier run finished them are not in
    ``finished_walls`` (they took no time now).

    Args:
        finished_walls (Sequence[float]): Wall times (s) of the steps run so far.
        remaining (int): Steps not finished yet.
        jobs (int): Steps run at the same time.

    Returns:
        float or None: Seconds, 0 when nothing remains, None when no step
        has run yet (nothing to estimate from).
    """
    if remaining <= 0:
        return 0.0
    if not finished_walls:
        return None
    return sum(finished_walls) / len(finished_walls) * remaining / max(int(jobs), 1)


def format_duration(seconds: Optional[float]) -> str:
    """``'?'`` for None, else ``'45 s'``, ``'12.5 min'`` or ``'3.2 h'``."""
    if seconds is None:
        return '?'
    if seconds < 60:
        return f'{seconds:.0f} s'
    if seconds < 3600:
        return f'{seconds / 60:.1f} min'
    return f'{seconds / 3600:.1f} h'
