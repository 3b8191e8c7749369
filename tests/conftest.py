"""Shared pytest fixtures.

Tests that need the optional shared folder (real nuScenes frame, stock
manifests) skip with a reason when it is absent; set
``RENDER_PRETRAIN_SHARED`` to point elsewhere.
"""
from pathlib import Path

import pytest
import torch

from render_pretrain import compat  # noqa: F401  (spconv/mmengine shims for every test)

# One intra-op thread: the suite's tensors are small, and on a 2-core machine
# two threads oversubscribe as soon as anything else runs (measured 7-20x
# slower training-loop tests under load). Benchmarks set their own threads.
torch.set_num_threads(1)

from render_pretrain.paths import (manifests_dir, real_frame_dir, REPO_ROOT,  # noqa: E402
                                   upstream_mmdet3d_dir)


def pytest_configure(config):
    # fails a test that builds a Runner, starts Python / a shell or over-fits unmarked
    from tests.tiers import TierGuard
    config.pluginmanager.register(TierGuard(), 'tier-guard')


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(params=['cpu', 'cuda'])
def device(request) -> str:
    """The device (``'cpu'``, ``'cuda'``) a core test creates its tensors on.

    The same assertions run on the CPU and, where available, on CUDA: the core
    functions follow their inputs' device. Results compared with numpy or a
    CPU reference are moved back with ``.cpu()``.
    """
    return request.param


def pytest_runtest_setup(item):
    # The CUDA cases of the device fixture skip here rather than in the fixture, so that
    # the skip summary folds them into one line (a fixture's skip names each test).
    callspec = getattr(item, 'callspec', None)
    if (callspec is not None and callspec.params.get('device') == 'cuda'
            and not torch.cuda.is_available()):
        pytest.skip('CUDA is not available: the device-parametrised tests ran on the CPU only')


@pytest.fixture(scope='session')
def real_frame() -> Path:
    path = real_frame_dir()
    if not (path / 'n015-2018-07-24-11-22-45+0800.pkl').exists():
        pytest.skip(f'real nuScenes frame not found at {path} '
                    '(set RENDER_PRETRAIN_SHARED to the shared folder)')
    return path


@pytest.fixture(scope='session')
def manifests() -> Path:
    path = manifests_dir()
    if not path.is_dir():
        pytest.skip(f'stock manifests not found at {path} '
                    '(set RENDER_PRETRAIN_SHARED to the shared folder)')
    return path


@pytest.fixture(scope='session')
def upstream_mmdet3d() -> Path:
    """The shared unmodified mmdetection3d v1.4.0 checkout, importable (on sys.path).

    ``projects`` is a namespace package here and upstream, so
    ``projects.BEVFusion.bevfusion`` imports next to our projects.
    """
    import sys
    path = upstream_mmdet3d_dir()
    if not (path / 'projects' / 'BEVFusion' / 'bevfusion' / '__init__.py').exists():
        pytest.skip(f'upstream mmdetection3d v1.4.0 (projects/BEVFusion) not found at {path} '
                    '(set RENDER_PRETRAIN_SHARED to the shared folder)')
    if str(path) not in sys.path:
        sys.path.append(str(path))
    return path


# Fixtures that build a small synthetic nuScenes world and its info files
# once per session (see tests/fixtures/).
from tests.fixtures.synthetic import *  # noqa: E402,F401,F403
from tests.fixtures.infos import *  # noqa: E402,F401,F403


@pytest.fixture(scope='session')
def report():
    """``tools/benchmarks/report.py`` (a script; importable from the repository root)."""
    import importlib
    return importlib.import_module('tools.benchmarks.report')


@pytest.fixture(scope='session')
def sizing():
    """``tools/benchmarks/model_sizing.py`` (a script; importable from the repository root)."""
    import importlib
    return importlib.import_module('tools.benchmarks.model_sizing')
