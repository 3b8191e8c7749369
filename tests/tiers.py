"""Test tiers: ``make test`` runs the whole suite, ``make test-fast`` leaves the marked tests out.

The tier markers (registered in setup.cfg, described in README.md "Tests"):

- ``runner``: builds an mmengine ``Runner`` (training / validation loops, checkpoints, resume).
- ``subprocess``: starts a Python interpreter or a shell script (``tools/*.py``, the
  distributed launch, ``python -c``); each start re-imports torch and the OpenMMLab stack.
- ``overfit``: optimises a model for many steps to show that its losses fall.
- ``slow``: any other test that takes more than a few seconds on one core (stock-size models,
  the real nuScenes frame).

``make test-fast`` runs ``pytest -m FAST_TIER``. :class:`TierGuard` (registered by
tests/conftest.py for every run) watches each test's set-up and call and fails a test that

- builds an mmengine ``Runner`` without ``runner``,
- starts a Python interpreter or a shell (``python*``, ``sys.executable``, ``bash``, ``sh``)
  without ``subprocess``; cheap programs (``git``, ``gcc`` probed by mmengine) are not counted,
- takes more than :data:`OVERFIT_STEPS` optimiser steps on more than
  :data:`OVERFIT_MIN_PARAMS` parameters without ``overfit`` (or ``runner``, whose training
  loop steps the optimiser by design),

so a new slow test cannot silently enter the fast tier: it fails in both tiers until it is
marked. A module- or session-scoped fixture is charged to the first test that sets it up.
"""
import functools
import os
import subprocess
import sys

import pytest

TIER_MARKERS = ('runner', 'subprocess', 'overfit', 'slow')
FAST_TIER = 'not (' + ' or '.join(TIER_MARKERS) + ')'

OVERFIT_STEPS = 10
OVERFIT_MIN_PARAMS = 1000

_SHELLS = ('bash', 'sh')


def starts_an_interpreter(args, kwargs: dict) -> bool:
    """Whether ``subprocess.Popen(args, **kwargs)`` starts Python or a shell.

    Args:
        args (str | bytes | os.PathLike | Sequence): Popen's ``args``.
        kwargs (dict): Popen's keyword arguments (``executable``, ``shell``).

    Returns:
        bool: True for ``sys.executable``, any ``python*`` program, ``bash`` / ``sh`` and
        ``shell=True`` commands whose first word is one of these.
    """
    if isinstance(args, (str, bytes, os.PathLike)):
        argv = [os.fsdecode(args)]
    else:
        argv = [os.fsdecode(arg) for arg in args]
    program = kwargs.get('executable') or (argv[0] if argv else '')
    program = os.fsdecode(program)
    if kwargs.get('shell') and not kwargs.get('executable'):
        program = program.split()[0] if program.split() else ''
    name = os.path.basename(program.strip('"\''))
    return (program == sys.executable or name.startswith('python') or name in _SHELLS)


class TierGuard:
    """pytest plugin: a test that does a tier's work must carry the tier's marker.

    The process-wide hooks (``subprocess.Popen.__init__``, mmengine ``Runner.__init__``, the
    optimiser step post-hook) are installed once per process and report to the innermost
    test being set up or run, so an in-process nested pytest session (tests/test_test_tiers.py)
    charges its own tests, not the outer one.
    """

    _installed = False
    _watching = []  # stack of [item, findings, optimiser steps]

    def __init__(self) -> None:
        self.install()

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        cls._installed = True
        popen_init = subprocess.Popen.__init__

        @functools.wraps(popen_init)
        def watched_popen_init(popen, args, *rest, **kwargs):
            if starts_an_interpreter(args, kwargs):
                cls._note('subprocess', f'starts {args!r:.120}')
            popen_init(popen, args, *rest, **kwargs)

        subprocess.Popen.__init__ = watched_popen_init

        from mmengine.runner import Runner
        runner_init = Runner.__init__

        @functools.wraps(runner_init)
        def watched_runner_init(runner, *args, **kwargs):
            cls._note('runner', 'builds an mmengine Runner')
            runner_init(runner, *args, **kwargs)

        Runner.__init__ = watched_runner_init

        from torch.optim.optimizer import register_optimizer_step_post_hook

        def count_step(optimizer, args, kwargs):
            if not cls._watching:
                return
            numel = sum(p.numel() for group in optimizer.param_groups for p in group['params'])
            if numel > OVERFIT_MIN_PARAMS:
                watch = cls._watching[-1]
                watch[2] += 1
                if watch[2] == OVERFIT_STEPS + 1:
                    cls._note('overfit', f'takes more than {OVERFIT_STEPS} optimiser steps on '
                              f'{numel} parameters')

        register_optimizer_step_post_hook(count_step)

    @classmethod
    def _note(cls, marker: str, what: str) -> None:
        if not cls._watching:
            return
        item, findings, _ = cls._watching[-1]
        exempt = (marker, 'runner') if marker == 'overfit' else (marker, )
        if not any(item.get_closest_marker(name) for name in exempt):
            findings.append((marker, what))

    def _watch(self, item):
        watch = [item, [], 0]
        self._watching.append(watch)
        try:
            result = yield
        finally:
            self._watching.remove(watch)
        if watch[1]:
            first = {}
            for marker, what in watch[1]:
                first.setdefault(marker, what)
            lines = [f'{item.nodeid} {what}: mark it @pytest.mark.{marker} '
                     f'(tests/tiers.py; it leaves `make test-fast`)'
                     for marker, what in first.items()]
            pytest.fail('\n'.join(lines), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        return (yield from self._watch(item))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        return (yield from self._watch(item))
