"""Each compat shim: the upstream behaviour fails here, the shimmed one works."""
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from render_pretrain import compat


def test_all_shims_applied():
    assert compat.APPLIED == {
        'pkg_resources_warning': True,
        'numpy_long_alias': True,
        'spconv_cpu_stream': True,
        'mmengine_torch_load': True,
        'mmengine_atomic_save': True,
        'mmengine_dataset_errors_name_files': True,
        'spconv_scatter_nd_tuple_index': True,
        'mmengine_cpu_distributed': not torch.cuda.is_available(),
        'bevfusion_cpu_ops': True,
        'nuscenes_eval_no_predictions': True,
    }


def test_wrapping_shims_wrap_the_upstream_function_once():
    """Applied again, each wrapping shim replaces its wrapper and wraps upstream's code."""
    from mmengine.dataset import BaseDataset
    from mmengine.runner import checkpoint as mm_checkpoint
    from mmengine.runner import runner as mm_runner
    from nuscenes.eval.common import loaders
    places = [(mm_checkpoint, 'save_checkpoint'), (mm_runner, 'save_checkpoint'),
              (BaseDataset, 'load_data_list'), (BaseDataset, '__getitem__'),
              (loaders, '_get_box_class_field')]
    before = [getattr(owner, name) for owner, name in places]
    upstream = [wrapper.__wrapped_upstream__ for wrapper in before]
    assert not any(hasattr(func, '__wrapped_upstream__') for func in upstream)
    try:
        assert compat.patch_mmengine_atomic_save() and compat.patch_mmengine_dataset_errors()
        assert compat.patch_nuscenes_eval_no_predictions()
        after = [getattr(owner, name) for owner, name in places]
        assert mm_checkpoint.save_checkpoint is mm_runner.save_checkpoint
        for old, new, func in zip(before, after, upstream):
            assert new is not old and new.__wrapped_upstream__ is func
    finally:
        for (owner, name), wrapper in zip(places, before):
            setattr(owner, name, wrapper)


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the spconv stream problem exists only without CUDA')
def test_spconv_cpu_backward_needs_the_stream_shim():
    import spconv.pytorch as spconv
    from spconv.pytorch import ops

    # Upstream: asking torch for the CUDA stream fails on a CPU-only build.
    with pytest.raises((AssertionError, AttributeError, RuntimeError)):
        torch.cuda.current_stream()
    assert ops.get_current_stream is compat._cpu_stream

    gen = torch.Generator().manual_seed(0)
    coords = torch.unique(torch.randint(0, 6, (40, 3), generator=gen, dtype=torch.int32), dim=0)
    indices = torch.cat([coords.new_zeros(len(coords), 1), coords], dim=1)
    feats = torch.randn(len(coords), 3, generator=gen, dtype=torch.float32, requires_grad=True)
    conv = spconv.SubMConv3d(3, 2, 3, bias=False, indice_key='t')
    out = conv(spconv.SparseConvTensor(feats, indices, [6, 6, 6], 1))
    out.features.sum().backward()
    # Independent reference: a dense conv3d with the same weights, inputs and
    # outputs restricted to the active sites, has the same input gradient.
    dense_in = torch.zeros(1, 3, 6, 6, 6, dtype=torch.float64, requires_grad=True)
    weight = conv.weight.detach().double()  # spconv 2.x layout (out, k, k, k, in)
    dense_out = torch.nn.functional.conv3d(dense_in, weight.permute(0, 4, 1, 2, 3), padding=1)
    z, y, x = coords.long().unbind(1)
    dense_out[0][:, z, y, x].sum().backward()
    expected = dense_in.grad[0][:, z, y, x].T.float()
    assert feats.grad.abs().sum() > 0
    torch.testing.assert_close(feats.grad, expected, atol=1e-5, rtol=1e-5)


def _runner_style_checkpoint(path):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat-test')
    hub.update_scalar('train/loss', 1.5)
    torch.save({'meta': {'seed': np.int64(3), 'message_hub': hub.state_dict()},
                'state_dict': {'w': torch.arange(3.0)}}, path)


def test_mmengine_checkpoint_needs_the_torch_load_shim(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'runner.pth')
    _runner_style_checkpoint(path)
    # Upstream: torch >= 2.6 refuses the non-tensor metadata by default.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    loaded = _load_checkpoint(path, map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
    assert loaded['meta']['seed'] == 3
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'))


@pytest.mark.runner
def test_real_runner_checkpoint_resumes_and_loads(tmp_path):
    """A checkpoint written by a real Runner resumes (iteration, optimizer,
    scheduler, message hub) and loads as ``load_from`` under weights-only."""
    from tests.toy_runner import build_toy_runner
    first = build_toy_runner(tmp_path / 'a', 'compat-resume-a', max_epochs=1)
    first.train()
    checkpoint = tmp_path / 'a' / 'epoch_1.pth'
    # Upstream torch default: the Runner checkpoint is refused.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint)
    resumed = build_toy_runner(tmp_path / 'b', 'compat-resume-b', max_epochs=2,
                               load_from=str(checkpoint), resume=True)
    resumed.train()
    assert resumed.iter == 4 and resumed.epoch == 2
    saved = torch.load(checkpoint, weights_only=False)  # trusted: made by this test
    assert saved['meta']['iter'] == 2
    state = build_toy_runner(tmp_path / 'c', 'compat-resume-c', load_from=str(checkpoint))
    state.load_or_resume()
    torch.testing.assert_close(state.model.linear.weight, saved['state_dict']['linear.weight'])


class _RunsCode:
    """Pickles as a call of ``func(*args)``, like a crafted checkpoint."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _crafted_payloads(marker):
    from mmengine.logging import HistoryBuffer
    return {
        'os.system': _RunsCode(os.system, f'touch {marker}'),
        'builtins.exec': _RunsCode(exec, f'open({str(marker)!r}, "w").close()'),
        # getattr is allowed only for HistoryBuffer's statistics methods.
        'getattr': _RunsCode(getattr, HistoryBuffer, '__init__'),
    }


@pytest.mark.parametrize('payload', ['os.system', 'builtins.exec', 'getattr'])
def test_crafted_checkpoint_is_refused_without_running(tmp_path, payload):
    from mmengine.runner.checkpoint import _load_checkpoint

    from render_pretrain.checkpoint_files import UntrustedCheckpointError
    marker = tmp_path / 'marker'
    path = tmp_path / 'crafted.pth'
    torch.save({'state_dict': {'w': torch.ones(1)},
                'meta': {'x': _crafted_payloads(marker)[payload]}}, path)
    with pytest.raises(UntrustedCheckpointError, match='crafted.pth: refused to load'):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


@pytest.mark.parametrize('content', [b'', b'not a checkpoint\n', 'half'])
def test_corrupt_checkpoint_named(tmp_path, content):
    from mmengine.runner.checkpoint import _load_checkpoint

    from render_pretrain.checkpoint_files import CorruptCheckpointError
    path = tmp_path / 'broken.pth'
    if content == 'half':
        torch.save({'state_dict': {'w': torch.zeros(1000)}}, path)
        content = path.read_bytes()[:path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(CorruptCheckpointError, match=f'{path} is not a readable checkpoint'):
        _load_checkpoint(str(path), map_location='cpu')


@pytest.mark.runner
def test_resume_of_a_truncated_checkpoint_names_it(tmp_path):
    """``--resume`` (Runner ``resume=True, load_from=...``) of a half-written
    checkpoint fails naming the file, before any training step."""
    from tests.toy_runner import build_toy_runner

    from render_pretrain.checkpoint_files import CorruptCheckpointError
    first = build_toy_runner(tmp_path / 'a', 'compat-truncated-a')
    first.train()
    checkpoint = tmp_path / 'a' / 'epoch_1.pth'
    checkpoint.write_bytes(checkpoint.read_bytes()[:checkpoint.stat().st_size // 2])
    resumed = build_toy_runner(tmp_path / 'b', 'compat-truncated-b', max_epochs=2,
                               load_from=str(checkpoint), resume=True)
    with pytest.raises(CorruptCheckpointError, match=f'{checkpoint} is not a readable'):
        resumed.train()
    assert resumed.iter == 0


_SAVE_UNDER_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: write() fails with EFBIG
import torch
import render_pretrain.compat
from tests.toy_runner import build_toy_runner
runners = [build_toy_runner(work, f'atomic-save-{i}') for i, work in enumerate(sys.argv[1:])]
limit = 40000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
for runner in runners:
    runner.model.register_buffer('big', torch.zeros(40000))  # a 160 kB checkpoint
    try:
        runner.train()  # the CheckpointHook saves epoch_1.pth at the end of the epoch
    except (OSError, RuntimeError) as err:  # torch's zip writer re-raises as RuntimeError
        print('save failed:', err)
"""


@pytest.mark.parametrize('opt_out', [True, False], ids=['upstream', 'shim'])
@pytest.mark.subprocess
def test_interrupted_save_leaves_old_or_nothing(tmp_path, opt_out):
    """A save that dies half-way (file-size limit standing in for a killed run
    or a full disk): upstream leaves a truncated epoch_1.pth that --resume
    chokes on; the shim leaves the previous file (or none) and no temporary."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from render_pretrain.checkpoint_files import CorruptCheckpointError
    env = dict(os.environ, PYTHONPATH=str(compat_repo_root()))
    if opt_out:
        env['RENDER_PRETRAIN_COMPAT_OPT_OUT'] = 'mmengine_atomic_save'
    works = {previous: tmp_path / f'previous_{previous}' for previous in (False, True)}
    for previous, work in works.items():
        work.mkdir()
        if previous:
            torch.save({'state_dict': {'w': torch.ones(2)}}, work / 'epoch_1.pth')
    result = subprocess.run([sys.executable, '-c', _SAVE_UNDER_SIZE_LIMIT,
                             *(str(w) for w in works.values())],
                            capture_output=True, text=True, timeout=120, env=env,
                            cwd=compat_repo_root())
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('save failed') == 2, result.stdout
    for previous, work in works.items():
        target = work / 'epoch_1.pth'
        if opt_out:
            assert target.stat().st_size == 40000  # truncated in place
            with pytest.raises(CorruptCheckpointError, match='epoch_1.pth is not a readable'):
                _load_checkpoint(str(target), map_location='cpu')
        else:
            assert [p.name for p in work.iterdir() if p.suffix == '.tmp'] == []
            if previous:
                loaded = _load_checkpoint(str(target), map_location='cpu')
                assert torch.equal(loaded['state_dict']['w'], torch.ones(2))
            else:
                assert not target.exists()


def test_atomic_save_mode_follows_umask(tmp_path):
    from mmengine.runner.checkpoint import save_checkpoint
    old = os.umask(0o027)
    try:
        save_checkpoint({'state_dict': {'w': torch.ones(1)}}, str(tmp_path / 'a.pth'))
    finally:
        os.umask(old)
    assert (tmp_path / 'a.pth').stat().st_mode & 0o777 == 0o640


def compat_repo_root():
    from render_pretrain.paths import REPO_ROOT
    return REPO_ROOT


def test_spconv_dense_uses_tuple_indexing():
    import spconv.pytorch as spconv
    indices = torch.tensor([[0, 1, 2, 3], [1, 0, 0, 1]], dtype=torch.int32)
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    tensor = spconv.SparseConvTensor(feats, indices, [2, 3, 4], 2)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # upstream's list indexing warns here
        dense = tensor.dense()
    assert dense.shape == (2, 2, 2, 3, 4)
    assert dense[0, :, 1, 2, 3].tolist() == [1.0, 2.0]
    assert dense[1, :, 0, 0, 1].tolist() == [3.0, 4.0]
    assert dense.abs().sum() == 10.0


@pytest.mark.skipif(torch.cuda.is_available(), reason='shim only acts without CUDA')
def test_cpu_ddp_wrapper_and_gloo_init(tmp_path):
    import torch.distributed as dist
    from mmengine.dist import utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    os.environ.update(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(29600 + os.getpid() % 300))
    try:
        dist_utils._init_dist_pytorch('nccl')  # upstream: torch.cuda.set_device -> AttributeError
        assert dist.get_backend() == 'gloo'
        model = MMDistributedDataParallel(torch.nn.Linear(2, 1), device_ids=[0])
        assert model.device_ids is None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _warnings_from_config_lookup(import_compat: bool) -> str:
    """stderr of a fresh interpreter that resolves a package config like mmengine does."""
    code = ('import render_pretrain.compat\n' if import_compat else '') + \
        'from mmengine.utils import is_installed\nassert is_installed("mmdet3d")\n'
    result = subprocess.run([sys.executable, '-W', 'default', '-c', code],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.subprocess
def test_pkg_resources_warning_filtered():
    assert 'pkg_resources is deprecated' in _warnings_from_config_lookup(import_compat=False)
    assert 'pkg_resources is deprecated' not in _warnings_from_config_lookup(import_compat=True)


@pytest.mark.subprocess
def test_numpy_long_alias_for_mmdet3d_object_sample():
    import inspect

    from mmdet3d.datasets.transforms import dbsampler
    # Upstream: mmdet3d's ground-truth sampler uses np.long, gone in numpy 1.24-1.26.
    assert 'dtype=np.long' in inspect.getsource(dbsampler.DataBaseSampler.sample_all)
    result = subprocess.run(
        [sys.executable, '-c', 'import numpy as np; np.long'], capture_output=True, text=True)
    assert result.returncode != 0 and 'long' in result.stderr
    labels = np.array([1, 2], dtype=np.long)
    assert labels.dtype == np.int64 and labels.tolist() == [1, 2]


def test_nuscenes_eval_scores_a_result_set_without_boxes():
    """Upstream: the devkit's filter raises on a detection result set with no box
    ('Invalid box type: None'); shimmed, the set filters to empty and
    accumulate scores it as no predictions (AP 0)."""
    from nuscenes.eval.common import loaders
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.algo import accumulate
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.eval.common.utils import center_distance
    empty = EvalBoxes()
    empty.add_boxes('sample_a', [])
    empty.add_boxes('sample_b', [])
    with pytest.raises(Exception, match='Invalid box type: None'):
        loaders._get_box_class_field.__wrapped_upstream__(empty)
    assert loaders._get_box_class_field(empty) == 'detection_name'
    gt = EvalBoxes()
    gt.add_boxes('sample_a', [DetectionBox(sample_token='sample_a', translation=(1.0, 2.0, 0.5),
                                           size=(4.0, 2.0, 1.5), detection_name='car',
                                           ego_translation=(1.0, 2.0, 0.5))])
    gt.add_boxes('sample_b', [])
    assert loaders._get_box_class_field(gt) == 'detection_name'  # upstream answer kept
    metric = accumulate(gt, empty, 'car', center_distance, 2.0)
    assert metric.max_recall_ind == 0 and float(metric.precision.max()) == 0.0


# --------------------------------------------------------------------------
# The registry: each shim is applied only where its upstream problem exists.
# --------------------------------------------------------------------------

CPU_ONLY_SHIMS = ('spconv_cpu_stream', 'mmengine_cpu_distributed', 'bevfusion_cpu_ops')


def _spconv_stream_places():
    import importlib
    modules = [importlib.import_module(f'spconv.pytorch.{name}')
               for name in ('cppcore', 'ops', 'hash', 'utils')]
    return [(m, 'get_current_stream') for m in modules if hasattr(m, 'get_current_stream')]


def _attribute_places(name):
    """(owner, attribute) pairs a wrapping shim replaces (marked __wrapped_upstream__)."""
    from mmengine.dataset import BaseDataset
    from mmengine.dist import utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    from mmengine.runner import checkpoint as mm_checkpoint
    from mmengine.runner import runner as mm_runner
    from nuscenes.eval.common import loaders
    from spconv.pytorch import core
    return {
        'spconv_cpu_stream': _spconv_stream_places(),
        'mmengine_atomic_save': [(mm_checkpoint, 'save_checkpoint'),
                                 (mm_runner, 'save_checkpoint')],
        'mmengine_dataset_errors_name_files': [(BaseDataset, 'load_data_list'),
                                               (BaseDataset, '__getitem__')],
        'spconv_scatter_nd_tuple_index': [(core, 'scatter_nd')],
        'mmengine_cpu_distributed': [(dist_utils, '_init_dist_pytorch'),
                                     (MMDistributedDataParallel, '__init__')],
        'nuscenes_eval_no_predictions': [(loaders, '_get_box_class_field')],
    }.get(name, [])


def _upstream_state(name, monkeypatch):
    """Put back what upstream had before shim ``name`` (undone after the test).

    Returns:
        callable: ``() -> tuple`` of the objects the shim would change, to
        compare before and after a decision (identity).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    from render_pretrain.bevfusion_ops import CPUOpsFinder
    monkeypatch.delenv('RENDER_PRETRAIN_COMPAT_OPT_OUT', raising=False)
    monkeypatch.delenv('RENDER_PRETRAIN_BEVFUSION_CPU_OPS', raising=False)
    places = _attribute_places(name)
    for owner, attr in places:
        current = getattr(owner, attr)
        monkeypatch.setattr(owner, attr, getattr(current, '__wrapped_upstream__', current))
    if name == 'pkg_resources_warning':  # the test runs inside warnings.catch_warnings()
        warnings.filters[:] = [f for f in warnings.filters
                               if not (f[1] and 'pkg_resources' in f[1].pattern)]
        warnings._filters_mutated()
        return lambda: tuple(f for f in warnings.filters
                             if f[1] and 'pkg_resources' in f[1].pattern)
    if name == 'numpy_long_alias':
        monkeypatch.delattr(np, 'long')
        return lambda: (np.__dict__.get('long'),)
    if name == 'mmengine_torch_load':
        monkeypatch.setitem(CheckpointLoader._schemes, '', compat._upstream_local_loader())
        return lambda: (CheckpointLoader._schemes[''],)
    if name == 'bevfusion_cpu_ops':
        monkeypatch.setattr(sys, 'meta_path',
                            [f for f in sys.meta_path if not isinstance(f, CPUOpsFinder)])
        return lambda: tuple(sys.meta_path)
    return lambda: tuple(getattr(owner, attr) for owner, attr in places)


def _pretend_upstream_fixed(name, monkeypatch, tmp_path):
    """Make the probe's input look like a fixed upstream (undone after the test)."""
    import importlib.machinery
    if name == 'pkg_resources_warning':
        monkeypatch.setattr(compat, '_module_source', lambda module: 'import os\n')
    elif name == 'numpy_long_alias':
        monkeypatch.setattr(np, 'long', type('long', (), {}), raising=False)  # numpy 2
    elif name == 'spconv_cpu_stream':
        for owner, attr in _spconv_stream_places():
            monkeypatch.setattr(owner, attr, lambda: 0)
    elif name == 'mmengine_torch_load':
        from mmengine.runner.checkpoint import CheckpointLoader

        from render_pretrain.checkpoint_files import load_checkpoint_file

        def fixed_loader(filename, map_location=None):
            return load_checkpoint_file(filename, map_location=map_location)
        monkeypatch.setitem(CheckpointLoader._schemes, '', fixed_loader)
    elif name == 'mmengine_atomic_save':
        from mmengine.fileio.backends import LocalBackend

        def atomic_put(self, obj, filepath):
            with open(f'{filepath}.part', 'wb') as f:
                f.write(obj)
            os.replace(f'{filepath}.part', filepath)
        monkeypatch.setattr(LocalBackend, 'put', atomic_put)
    elif name == 'mmengine_dataset_errors_name_files':
        from mmengine.dataset import BaseDataset
        upstream = BaseDataset.load_data_list

        def naming_load(self):
            try:
                return upstream(self)
            except Exception as err:
                raise ValueError(f'{self.ann_file}: {err}') from err
        monkeypatch.setattr(BaseDataset, 'load_data_list', naming_load)
    elif name == 'spconv_scatter_nd_tuple_index':
        from spconv.pytorch import core
        monkeypatch.setattr(core, 'scatter_nd', lambda i, u, s: compat._scatter_nd(i, u, s))
    elif name == 'bevfusion_cpu_ops':
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        for ext in compat.BEVFUSION_EXTENSIONS:
            (tmp_path / (ext + suffix)).parent.mkdir(parents=True)
            (tmp_path / (ext + suffix)).write_bytes(b'\x7fELF')
        monkeypatch.syspath_prepend(str(tmp_path))
    elif name == 'nuscenes_eval_no_predictions':
        from nuscenes.eval.common import loaders
        monkeypatch.setattr(loaders, '_get_box_class_field', lambda boxes: 'detection_name')
    else:
        raise KeyError(name)


ALL_SHIMS = [shim.name for shim in compat.SHIMS]
FIXABLE_SHIMS = [name for name in ALL_SHIMS if name != 'mmengine_cpu_distributed']


def _same(before, after):
    return len(before) == len(after) and all(a is b for a, b in zip(before, after))


@pytest.mark.skipif(torch.cuda.is_available(), reason='the problems are those of a CPU machine')
@pytest.mark.parametrize('name', ALL_SHIMS)
def test_shim_applied_where_upstream_has_the_problem(name, monkeypatch):
    with warnings.catch_warnings():
        snapshot = _upstream_state(name, monkeypatch)
        before = snapshot()
        state = compat.apply_shim(compat.SHIMS_BY_NAME[name])
        assert state.status == 'applied' and state.reason
        assert not _same(before, snapshot())


@pytest.mark.parametrize('name', FIXABLE_SHIMS)
def test_shim_not_applied_where_upstream_is_fixed(name, monkeypatch, tmp_path):
    with warnings.catch_warnings():
        snapshot = _upstream_state(name, monkeypatch)
        _pretend_upstream_fixed(name, monkeypatch, tmp_path)
        before = snapshot()
        state = compat.apply_shim(compat.SHIMS_BY_NAME[name])
        assert state.status == 'not needed', state
        assert _same(before, snapshot())


@pytest.mark.parametrize('name', CPU_ONLY_SHIMS)
def test_cpu_only_shims_not_applied_where_cuda_is_available(name, monkeypatch):
    snapshot = _upstream_state(name, monkeypatch)
    before = snapshot()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    state = compat.apply_shim(compat.SHIMS_BY_NAME[name])
    assert state.status == 'not needed' and 'CUDA is available' in state.reason
    assert _same(before, snapshot())


@pytest.mark.parametrize('name', ALL_SHIMS)
def test_opt_out_leaves_upstream_untouched(name, monkeypatch):
    with warnings.catch_warnings():
        snapshot = _upstream_state(name, monkeypatch)
        before = snapshot()
        monkeypatch.setenv('RENDER_PRETRAIN_COMPAT_OPT_OUT', f'some_other, {name}')
        state = compat.apply_shim(compat.SHIMS_BY_NAME[name])
        assert state.status == 'opted out'
        assert _same(before, snapshot())


#: Shims of optional packages: shim name -> (top-level module, package named in the reason).
OPTIONAL_PACKAGES = {
    'spconv_cpu_stream': ('spconv', 'spconv'),
    'mmengine_torch_load': ('mmengine', 'mmengine'),
    'mmengine_atomic_save': ('mmengine', 'mmengine'),
    'mmengine_dataset_errors_name_files': ('mmengine', 'mmengine'),
    'spconv_scatter_nd_tuple_index': ('spconv', 'spconv'),
    'mmengine_cpu_distributed': ('mmengine', 'mmengine'),
    'nuscenes_eval_no_predictions': ('nuscenes', 'nuscenes-devkit'),
}


@pytest.mark.parametrize('name', list(OPTIONAL_PACKAGES))
def test_shim_of_a_missing_package_is_not_needed_and_patches_nothing(name, monkeypatch):
    """Without its package a shim's probe says so and its patch returns False, changing nothing."""
    module, package = OPTIONAL_PACKAGES[name]
    snapshot = _upstream_state(name, monkeypatch)
    before = snapshot()
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for key in [key for key in sys.modules if key.split('.')[0] == module]:
        monkeypatch.setitem(sys.modules, key, None)  # import raises ModuleNotFoundError
    shim = compat.SHIMS_BY_NAME[name]
    assert shim.probe() == (False, f'{package} is not installed')
    assert shim.apply() is False
    assert compat.apply_shim(shim) == compat.ShimState('not needed',
                                                       f'{package} is not installed')
    assert _same(before, snapshot())


def test_a_failing_probe_applies_the_shim_and_says_so(monkeypatch):
    import dataclasses
    import tempfile
    snapshot = _upstream_state('mmengine_torch_load', monkeypatch)
    before = snapshot()

    def no_tmp():
        raise FileNotFoundError('no usable temporary directory')
    monkeypatch.setattr(tempfile, 'gettempdir', no_tmp)
    monkeypatch.setattr(tempfile, 'mkdtemp', lambda *a, **k: no_tmp())
    shim = compat.SHIMS_BY_NAME['mmengine_torch_load']
    state = compat.apply_shim(shim)
    assert state.status == 'applied' and 'the probe failed (FileNotFoundError' in state.reason
    assert not _same(before, snapshot())
    state = compat.apply_shim(dataclasses.replace(shim, probe=lambda: (False, 'fixed')))
    assert state == compat.ShimState('not needed', 'fixed')


def test_bevfusion_switch_opts_out(monkeypatch):
    snapshot = _upstream_state('bevfusion_cpu_ops', monkeypatch)
    before = snapshot()
    monkeypatch.setenv('RENDER_PRETRAIN_BEVFUSION_CPU_OPS', '0')
    assert compat.apply_shim(compat.SHIMS_BY_NAME['bevfusion_cpu_ops']).status == 'opted out'
    assert _same(before, snapshot())


def test_unknown_opt_out_name_is_reported(monkeypatch):
    monkeypatch.setattr(compat, 'STATES', {})
    monkeypatch.setattr(compat, 'APPLIED', {})
    monkeypatch.setenv('RENDER_PRETRAIN_COMPAT_OPT_OUT', ','.join(ALL_SHIMS + ['numpy_long']))
    with pytest.warns(UserWarning, match=r"unknown shims \['numpy_long'\]"):
        applied = compat.apply_all()
    assert applied == dict.fromkeys(ALL_SHIMS, False)


def test_doctor_lists_every_shim_with_its_state(monkeypatch):
    import io
    import json

    from tools.utils import environment_check
    states = dict(compat.STATES)
    states['numpy_long_alias'] = compat.ShimState('not needed', 'numpy 2.1.0 defines np.long')
    states['mmengine_atomic_save'] = compat.ShimState('opted out', 'listed')
    monkeypatch.setattr(compat, 'STATES', states)
    text = environment_check.check_compat_shims()
    assert text.splitlines()[0].startswith('8 applied, 1 not needed, 1 opted out')
    listed = {line.split(':')[0].strip(): line for line in text.splitlines()[1:]}
    assert list(listed) == ALL_SHIMS
    assert 'not needed (numpy 2.1.0 defines np.long)' in listed['numpy_long_alias']
    assert 'opted out' in listed['mmengine_atomic_save']
    monkeypatch.setattr(environment_check, 'CHECKS',
                        [('compat shims', environment_check.check_compat_shims)])
    stream = io.StringIO()
    assert environment_check.run_checks(stream, as_json=True) == 0
    report = json.loads(stream.getvalue())
    assert [s['name'] for s in report['shims']] == ALL_SHIMS
    assert {s['name']: s['state'] for s in report['shims']}['numpy_long_alias'] == 'not needed'
    assert all(s['problem'] and s['needed_when'] and s['reason'] for s in report['shims'])


@pytest.mark.subprocess
def test_doctor_json_in_a_fresh_process_shows_the_opt_out():
    env = dict(os.environ, RENDER_PRETRAIN_COMPAT_OPT_OUT='numpy_long_alias')
    env.pop('RENDER_PRETRAIN_BEVFUSION_CPU_OPS', None)
    result = subprocess.run([sys.executable, 'tools/check_env.py', '--json'],
                            capture_output=True, text=True, timeout=300, env=env,
                            cwd=compat_repo_root())
    import json
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report['failures'] == 0, result.stdout
    states = {s['name']: s['state'] for s in report['shims']}
    assert list(states) == ALL_SHIMS
    expected = 'not needed' if torch.cuda.is_available() else 'applied'
    assert states == dict({name: 'applied' for name in ALL_SHIMS},
                          numpy_long_alias='opted out',
                          **{name: expected for name in CPU_ONLY_SHIMS})


def test_readme_table_lists_exactly_the_registry():
    import re
    readme = (compat_repo_root() / 'README.md').read_text()
    section = readme.split('### Compatibility shims', 1)[1].split('\n### ', 1)[0]
    rows = re.findall(r'^\| `([a-z0-9_]+)` \|', section, flags=re.M)
    assert sorted(rows) == sorted(ALL_SHIMS) and len(rows) == len(set(rows))
