"""Checks that the installed stack can run this project (``make doctor``).

Each check returns a one-line result or raises :class:`CheckFailed` whose
message says what to do. :func:`run_checks` runs them all and reports.
"""
import importlib
import platform
import sys
from typing import Callable, List, Tuple

GLUE_PACKAGES = ('projects.common', 'projects.BEVFusionCompat.bevfusion_compat',
                 'projects.NSMAE.nsmae', 'projects.MIM4D.mim4d',
                 'projects.BEVDetCompat.bevdet_compat', 'projects.BEVSeg.bevseg')
REGISTRY_NAMES = ('MODELS', 'TRANSFORMS', 'HOOKS', 'METRICS', 'DATASETS')
FIX_INSTALL = 'run `make install` (tools/install.sh) to (re)install the stack'


class CheckFailed(RuntimeError):
    """A check failed; the message says what to do."""


def check_versions() -> str:
    """Import the stack and report its versions."""
    versions = [f'python {platform.python_version()}']
    for name in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'spconv', 'numpy'):
        try:
            module = importlib.import_module(name)
        except ImportError as err:
            raise CheckFailed(f'cannot import {name} ({err}); {FIX_INSTALL}') from err
        versions.append(f'{name} {getattr(module, "__version__", "?")}')
    import torch
    versions.append(f'cuda {"yes" if torch.cuda.is_available() else "no"}')
    return ', '.join(versions)


def check_mmcv_voxelization() -> str:
    """mmcv's compiled ops load and Voxelization runs on the CPU."""
    import torch
    try:
        from mmcv.ops import Voxelization
    except (ImportError, OSError) as err:
        raise CheckFailed(
            f'mmcv ops do not load ({err}): mmcv must be built with ops against the '
            f'installed torch (MMCV_WITH_OPS=1, --no-build-isolation); {FIX_INSTALL}') from err
    points = torch.tensor([[0.05, 0.05, 0.05, 1.0], [0.06, 0.06, 0.06, 1.0],
                           [0.55, 0.05, 0.05, 1.0]])
    voxelize = Voxelization(voxel_size=[0.5, 0.5, 0.5], point_cloud_range=[0, 0, 0, 1, 1, 1],
                            max_num_points=4, max_voxels=10)
    voxels, coors, counts = voxelize(points)
    if sorted(counts.tolist()) != [1, 2]:
        raise CheckFailed(f'mmcv Voxelization returned wrong point counts {counts.tolist()}, '
                          f'expected [1, 2]; {FIX_INSTALL}')
    return f'Voxelization: {len(voxels)} voxels from 3 points'


def check_spconv_backward() -> str:
    """spconv runs a sparse convolution forward and backward on the CPU."""
    from render_pretrain import compat  # noqa: F401  (applies the spconv CPU shim)
    import torch
    try:
        import spconv.pytorch as spconv
    except ImportError as err:
        raise CheckFailed(f'cannot import spconv ({err}); {FIX_INSTALL}, or in an existing '
                          'environment: pip install spconv-cu1xx (your CUDA) or '
                          'pip install -e ".[cpu]" (CPU build)') from err
    gen = torch.Generator().manual_seed(0)
    coords = torch.unique(torch.randint(0, 8, (64, 3), generator=gen, dtype=torch.int32), dim=0)
    indices = torch.cat([coords.new_zeros(len(coords), 1), coords], dim=1)
    feats = torch.randn(len(coords), 4, generator=gen, requires_grad=True)
    conv = spconv.SubMConv3d(4, 8, 3, bias=False, indice_key='check')
    out = conv(spconv.SparseConvTensor(feats, indices, [8, 8, 8], 1))
    try:
        out.features.square().sum().backward()
    except (AssertionError, RuntimeError) as err:
        raise CheckFailed(
            f'spconv backward fails on this machine ({err}); the render_pretrain.compat '
            'shim should have fixed the CPU stream problem: check that spconv==2.3.8 is '
            'installed') from err
    if conv.weight.grad is None or not torch.isfinite(conv.weight.grad).all():
        raise CheckFailed('spconv backward produced no finite weight gradient')
    return f'spconv SubMConv3d forward+backward on {len(coords)} voxels'


def check_nuscenes_devkit() -> str:
    """nuscenes-devkit and its evaluation code import."""
    try:
        from nuscenes.eval.detection.evaluate import DetectionEval  # noqa: F401
        from nuscenes.nuscenes import NuScenes  # noqa: F401
    except ImportError as err:
        raise CheckFailed(f'cannot import nuscenes-devkit ({err}); {FIX_INSTALL}') from err
    return 'nuscenes-devkit imports (NuScenes, DetectionEval)'


def check_registered_modules() -> str:
    """Our glue packages import and every exported name is in an mmdet3d registry."""
    import mmdet3d.registry as registries
    counts = []
    for package in GLUE_PACKAGES:
        try:
            module = importlib.import_module(package)
        except Exception as err:
            raise CheckFailed(f'importing {package} failed: {err!r}') from err
        missing = [name for name in getattr(module, '__all__', [])
                   if not any(getattr(registries, reg).get(name) is not None
                              for reg in REGISTRY_NAMES)]
        if missing:
            raise CheckFailed(f'{package} exports {missing} but they are not in any mmdet3d '
                              f'registry ({", ".join(REGISTRY_NAMES)})')
        counts.append(f'{package}: {len(getattr(module, "__all__", []))} registered')
    return '; '.join(counts)


def check_compat_shims() -> str:
    """Every shim of ``render_pretrain.compat.SHIMS`` with its state and reason.

    Returns:
        str: A summary line, then one indented line per shim:
        ``name: applied | not needed | opted out (reason)``.
    """
    from render_pretrain import compat
    report = compat.shim_report()
    counts = {state: sum(r['state'] == state for r in report)
              for state in (compat.APPLIED_STATUS, compat.NOT_NEEDED, compat.OPTED_OUT)}
    lines = [', '.join(f'{n} {state}' for state, n in counts.items())
             + ' (opt out: RENDER_PRETRAIN_COMPAT_OPT_OUT=name,...)']
    lines += [f'    {r["name"]}: {r["state"]} ({r["reason"]})' for r in report]
    return '\n'.join(lines)


CHECKS: List[Tuple[str, Callable[[], str]]] = [
    ('versions', check_versions),
    ('mmcv ops', check_mmcv_voxelization),
    ('spconv', check_spconv_backward),
    ('nuscenes-devkit', check_nuscenes_devkit),
    ('registered modules', check_registered_modules),
    ('compat shims', check_compat_shims),
]


def run_checks(stream=sys.stdout, as_json: bool = False) -> int:
    """Run every check and report; return the number of failures.

    Args:
        stream (file): Where the report goes.
        as_json (bool): Write one JSON object instead of text lines:
            ``{"checks": [{"name", "ok", "message"}], "shims": [{"name",
            "state", "reason", "problem", "needed_when"}], "failures": int}``.

    Returns:
        int: Number of failed checks.
    """
    results = []
    for name, check in CHECKS:
        try:
            results.append(dict(name=name, ok=True, message=check()))
        except CheckFailed as err:
            results.append(dict(name=name, ok=False, message=str(err)))
    failures = sum(not r['ok'] for r in results)
    if as_json:
        import json
        from render_pretrain import compat
        json.dump(dict(checks=results, shims=compat.shim_report(), failures=failures), stream,
                  indent=1)
        stream.write('\n')
        return failures
    for r in results:
        stream.write(f'[{" ok " if r["ok"] else "FAIL"}] {r["name"]}: {r["message"]}\n')
    stream.write('environment OK\n' if not failures else f'{failures} check(s) failed\n')
    return failures
