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
        'spconv_scatter_nd_tuple_index': True,
        'mmengine_cpu_distributed': not torch.cuda.is_available(),
        'bevfusion_cpu_ops': True,
    }


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


def test_pkg_resources_warning_filtered():
    assert 'pkg_resources is deprecated' in _warnings_from_config_lookup(import_compat=False)
    assert 'pkg_resources is deprecated' not in _warnings_from_config_lookup(import_compat=True)


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
