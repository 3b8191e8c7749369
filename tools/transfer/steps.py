"""Steps run as subprocesses: skipped when done, several at a time after their dependencies.

A :class:`Step` is a command with the files it writes (``outputs``) and
reads (``inputs``). :class:`StepRunner` runs it with its output in a log
file and records a marker (``<work_dir>/steps/<name>.json``: wall time,
command, fingerprint of the command and of what it reads); a step whose
marker matches and whose outputs exist is skipped. :class:`StepPool` runs
steps on worker threads, each after the steps it depends on.
"""
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from render_pretrain.progress import eta_seconds, format_duration

logger = logging.getLogger(__name__)


class StepError(RuntimeError):
    """A step failed or did not write its outputs."""


class TransferExperimentError(StepError):
    """A step failed, or its output lacks what the experiment needs."""


@dataclasses.dataclass
class Step:
    """One subprocess of the experiment.

    Attributes:
        name (str): Unique id (also the marker file name).
        argv (list[str]): Command ``[python, script, arguments...]``.
        outputs (list[Path]): Files whose presence means the step is done.
        log (Path): Where stdout and stderr go.
        inputs (list[Path]): Files the step reads besides those on its
            command line (info files, the checkpoint named by ``load_from``):
            a newer input makes the step run again.
    """

    name: str
    argv: List[str]
    outputs: List[Path]
    log: Path
    inputs: List[Path] = dataclasses.field(default_factory=list)


def step_fingerprint(step: Step) -> str:
    """Hash of a step's command and of what it reads.

    The command line, the content of the configs on it (``.py`` arguments
    after the tool's script), and the size and modification time of the
    checkpoints it reads (``.pth`` on it, not its outputs) and of
    ``step.inputs``: a step whose config changed (data, schedule, init) or
    whose input was re-made is re-run.
    """
    digest = hashlib.sha256('\0'.join(step.argv).encode())
    for arg in step.argv[2:]:  # [python, tool script, arguments...]
        path = Path(arg)
        if arg.endswith('.py') and path.is_file():
            digest.update(path.read_bytes())
    files = [Path(arg) for arg in step.argv
             if arg.endswith('.pth') and Path(arg) not in step.outputs] + list(step.inputs)
    for path in files:
        stat = path.stat() if path.exists() else None
        digest.update(f'{path}:{stat.st_size}:{stat.st_mtime_ns}'.encode() if stat else
                      f'{path}:absent'.encode())
    return digest.hexdigest()


class StepRunner:
    """Runs steps as subprocesses, skipping finished ones, reporting progress.

    Each progress line starts with the time since the start and, once
    :attr:`total` is set (the experiment sets it to its number of steps),
    the overall count and the estimated time left, e.g.
    ``[  12.5 min] [3/10 done, ETA 40.0 min] pretrain-nsmae: finished in 300 s``
    (:func:`render_pretrain.progress.eta_seconds`: the mean wall time of the
    steps run in this invocation times the steps left, over ``jobs``).

    Args:
        work_dir (Path): Holds ``steps/<name>.json`` markers.
        cwd (Path): Working directory of the commands; also put first on
            their ``PYTHONPATH``.
        force (bool): Re-run finished steps.
        progress (callable, optional): Called with one line per event
            (the CLI prints it); default: the module logger.
        threads (int, optional): ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``
            of the subprocesses (default: inherited).
        total (int, optional): Steps of the whole job (for the count and
            ETA; settable later as :attr:`total`).
        jobs (int): Steps run at the same time (for the ETA).
    """

    def __init__(self, work_dir: Path, cwd: Path, force: bool = False,
                 progress: Optional[Callable[[str], None]] = None,
                 threads: Optional[int] = None, total: Optional[int] = None,
                 jobs: int = 1):
        self.marker_dir = Path(work_dir) / 'steps'
        self.total, self.jobs = total, jobs
        self.finished = 0  # steps done (run or skipped)
        self.walls: List[float] = []  # wall times of the steps run now
        self._lock = threading.Lock()
        self.cwd = Path(cwd)
        self.force = force
        self.threads = threads
        self.progress = progress or logger.info
        self.start = time.monotonic()

    def _marker(self, step: Step) -> Path:
        return self.marker_dir / f'{step.name}.json'

    def overall(self) -> str:
        """``'[k/N done, ETA t] '`` (empty without :attr:`total`)."""
        if not self.total:
            return ''
        eta = eta_seconds(self.walls, self.total - self.finished, self.jobs)
        return f'[{self.finished}/{self.total} done, ETA {format_duration(eta)}] '

    def _say(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        self.progress(f'[{elapsed / 60:6.1f} min] {self.overall()}{message}')

    def _finish(self, wall: Optional[float]) -> None:
        with self._lock:
            self.finished += 1
            if wall is not None:
                self.walls.append(wall)

    def run(self, step: Step) -> dict:
        """Run ``step`` unless it is finished.

        Returns:
            dict: ``name``, ``wall_s`` (of the run that produced the outputs),
            ``skipped`` (bool), ``log``, ``argv``.

        Raises:
            StepError: If the command fails or does not write
                its outputs; names the log file.
        """
        marker = self._marker(step)
        fingerprint = step_fingerprint(step)
        done = (marker.is_file() and all(path.exists() for path in step.outputs)
                and json.loads(marker.read_text()).get('fingerprint') == fingerprint)
        if done and not self.force:
            record = json.loads(marker.read_text())
            record['skipped'] = True
            self._finish(None)
            self._say(f'{step.name}: done before ({record["wall_s"]:.0f} s), skipped')
            return record
        self._say(f'{step.name}: running (log {step.log})')
        step.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [str(self.cwd)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
        if self.threads:
            env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(self.threads)
        begin = time.monotonic()
        with open(step.log, 'w') as log:
            log.write('$ ' + ' '.join(step.argv) + '\n')
            log.flush()
            code = subprocess.call(step.argv, cwd=self.cwd, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
        wall = time.monotonic() - begin
        if code != 0:
            raise StepError(
                f'step {step.name} failed with exit code {code} after {wall:.0f} s; '
                f'see {step.log}')
        missing = [str(path) for path in step.outputs if not path.exists()]
        if missing:
            raise StepError(
                f'step {step.name} finished but did not write {missing}; see {step.log}')
        record = dict(name=step.name, wall_s=wall, log=str(step.log), argv=step.argv,
                      fingerprint=fingerprint)
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(record, indent=1))
        self._finish(wall)
        self._say(f'{step.name}: finished in {wall:.0f} s')
        return dict(record, skipped=False)


class StepPool:
    """Runs steps on ``jobs`` worker threads (one subprocess each), after their dependencies.

    Steps must be submitted after their dependencies: the queue is FIFO, so
    when a step starts, every step submitted before it has started, and
    waiting on a dependency cannot dead-lock.

    Args:
        runner (StepRunner): Runs or skips each step.
        jobs (int): Steps run at the same time.
    """

    def __init__(self, runner: StepRunner, jobs: int):
        self.runner = runner
        self.pool = ThreadPoolExecutor(max_workers=jobs)

    def submit(self, step: Step, deps: Sequence[Future] = ()) -> Future:
        def task():
            for dep in deps:
                dep.result()
            return self.runner.run(step)
        return self.pool.submit(task)

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)
