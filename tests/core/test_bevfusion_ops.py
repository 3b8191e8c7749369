"""CPU stand-ins of BEVFusion's compiled ops, called through upstream's own Python code.

Upstream's ``bev_pool`` / ``Voxelization`` / ``DynamicScatter`` (the shared
unmodified mmdetection3d v1.4.0 checkout) import ``bev_pool_ext`` and
``voxel_layer``; here those are served by ``render_pretrain.bevfusion_ops``
(the ``bevfusion_cpu_ops`` compat shim). References: upstream's own
pure-PyTorch ``QuickCumsum`` path, numpy sums, mmcv's ``Voxelization``.

CPU only, by design: these stand-ins serve upstream's extensions where no
compiled (CUDA) build exists; on a GPU machine the compiled ops are found first
(tested below), so there is no ``device`` parametrisation here.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from render_pretrain import bevfusion_ops
from render_pretrain.paths import REPO_ROOT


@pytest.fixture(scope='module')
def upstream_ops(upstream_mmdet3d):
    import projects.BEVFusion.bevfusion.ops as ops
    return ops


def _bev_pool_module():
    return sys.modules['projects.BEVFusion.bevfusion.ops.bev_pool.bev_pool']


def _frustum_points(n, B, D, H, W, C, seed):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, C, generator=gen, dtype=torch.float32)
    coords = torch.stack([torch.randint(0, H, (n,), generator=gen),
                          torch.randint(0, W, (n,), generator=gen),
                          torch.randint(0, D, (n,), generator=gen),
                          torch.randint(0, B, (n,), generator=gen)], 1)
    return feats, coords


def _quick_cumsum_pool(feats, coords, B, D, H, W):
    """Upstream's pure-PyTorch QuickCumsum path (the LSS pooling before the CUDA op)."""
    ranks = (coords[:, 0] * (W * D * B) + coords[:, 1] * (D * B) + coords[:, 2] * B + coords[:, 3])
    order = ranks.argsort()
    x, geom, ranks = feats[order], coords[order], ranks[order]
    x, geom = _bev_pool_module().QuickCumsum.apply(x, geom, ranks)
    out = x.new_zeros(B, feats.shape[1], D, H, W)
    out[geom[:, 3], :, geom[:, 2], geom[:, 0], geom[:, 1]] = x
    return out


def test_the_extensions_are_the_cpu_stand_ins(upstream_ops):
    pool_ext = _bev_pool_module().bev_pool_ext
    voxel_layer = sys.modules['projects.BEVFusion.bevfusion.ops.voxel.voxel_layer']
    assert pool_ext.bev_pool_forward is bevfusion_ops.bev_pool_forward
    assert voxel_layer.hard_voxelize is bevfusion_ops.hard_voxelize
    assert voxel_layer.dynamic_point_to_voxel_forward is \
        bevfusion_ops.dynamic_point_to_voxel_forward


@pytest.mark.parametrize('seed', [0, 1])
def test_bev_pool_equals_quick_cumsum_and_numpy(upstream_ops, seed):
    B, D, H, W, C = 2, 3, 7, 5, 4
    feats, coords = _frustum_points(600, B, D, H, W, C, seed)  # ~2.9 points per cell
    feats.requires_grad_(True)
    ours = upstream_ops.bev_pool(feats, coords, B, D, H, W)  # (B, C, D, H, W)
    assert ours.shape == (B, C, D, H, W)

    ref_feats = feats.detach().clone().requires_grad_(True)
    ref = _quick_cumsum_pool(ref_feats, coords, B, D, H, W)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)

    expected = np.zeros((B, C, D, H, W), np.float64)  # independent: numpy scatter-add
    c = coords.numpy()
    np.add.at(expected.transpose(0, 2, 3, 4, 1), (c[:, 3], c[:, 2], c[:, 0], c[:, 1]),
              feats.detach().double().numpy())
    np.testing.assert_allclose(ours.detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    assert (ours.abs().sum(1) > 0).sum() == len(np.unique(c, axis=0))  # occupied cells only

    grad = torch.randn(ours.shape, generator=torch.Generator().manual_seed(seed + 10))
    ours.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(feats.grad, ref_feats.grad)
    # each point receives its own cell's gradient (locality)
    g = grad.permute(0, 2, 3, 4, 1).numpy()[c[:, 3], c[:, 2], c[:, 0], c[:, 1]]
    np.testing.assert_allclose(feats.grad.numpy(), g)


def test_bev_pool_forward_contract_with_uncovered_points_and_bad_indices():
    x = torch.arange(10, dtype=torch.float32).view(5, 2)
    geom = torch.tensor([[0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1]],
                        dtype=torch.int32)
    lengths, starts = torch.tensor([2, 1], dtype=torch.int32), torch.tensor([0, 2],
                                                                            dtype=torch.int32)
    out = bevfusion_ops.bev_pool_forward(x, geom, lengths, starts, 2, 1, 2, 2)
    expected = torch.zeros(2, 1, 2, 2, 2)
    expected[0, 0, 0, 1] = torch.tensor([0. + 2., 1. + 3.])
    expected[0, 0, 1, 0] = torch.tensor([4., 5.])  # point 3 lies in no interval
    torch.testing.assert_close(out, expected)
    grad = bevfusion_ops.bev_pool_backward(torch.ones(2, 1, 2, 2, 2), geom, lengths, starts,
                                           2, 1, 2, 2)
    torch.testing.assert_close(grad, torch.tensor([[1., 1.], [1., 1.], [1., 1.], [0., 0.],
                                                   [0., 0.]]))
    with pytest.raises(IndexError, match='batch index outside'):
        bevfusion_ops.bev_pool_forward(x, geom, lengths, torch.tensor([0, 4], dtype=torch.int32),
                                       1, 1, 2, 2)


def _points(n, seed):
    gen = torch.Generator().manual_seed(seed)
    xyz = torch.rand(n, 3, generator=gen) * torch.tensor([24., 24., 8.]) - torch.tensor(
        [12., 12., 5.])  # partly outside the range below
    return torch.cat([xyz, torch.rand(n, 2, generator=gen)], 1)


@pytest.mark.parametrize('max_points,max_voxels', [(10, 20000), (3, 150), (-1, 20000)])
def test_upstream_voxelization_is_mmcvs_with_xyz_coordinates(upstream_ops, max_points,
                                                             max_voxels):
    """Upstream's voxel_layer (voxelization_cpu.cpp) writes (x, y, z); mmcv (z, y, x)."""
    from mmcv.ops import Voxelization as MMCVVoxelization
    points = _points(3000, seed=max_points + 2)
    kwargs = dict(voxel_size=[0.8, 0.8, 0.5], point_cloud_range=[-10, -10, -4, 10, 10, 2],
                  max_num_points=max_points, max_voxels=max_voxels)
    ours = upstream_ops.Voxelization(**kwargs)(points)
    theirs = MMCVVoxelization(**kwargs)(points)
    if max_points == -1:
        ours, theirs = (ours,), (theirs,)
    coors = ours[0] if max_points == -1 else ours[1]
    assert coors.dtype == torch.int32
    torch.testing.assert_close(coors, (theirs[0] if max_points == -1 else theirs[1]).flip(-1),
                               rtol=0, atol=0)
    if max_points != -1:
        for a, b in ((ours[0], theirs[0]), (ours[2], theirs[2])):  # voxels, counts
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert 0 < len(coors) <= max_voxels and ours[2].max() <= max_points
    # independent: floor((p - min) / size) per axis, (x, y, z), -1 outside the range
    idx = np.floor((points[:, :3].numpy() - [-10, -10, -4]) / [0.8, 0.8, 0.5]).astype(int)
    inside = ((idx >= 0) & (idx < [25, 25, 12])).all(1)
    expected = np.where(inside[:, None], idx, -1)
    if max_points == -1:
        np.testing.assert_array_equal(coors.numpy(), expected)
    else:  # each voxel holds its points, whose own (x, y, z) cell is the voxel's
        voxels, counts = ours[0].numpy(), ours[2].numpy()
        for v in range(len(coors)):
            cells = np.floor((voxels[v, :counts[v], :3] - [-10, -10, -4]) / [0.8, 0.8, 0.5])
            assert (cells == coors[v].numpy()).all()


@pytest.mark.parametrize('average', [True, False])
def test_upstream_dynamic_scatter_equals_numpy_groups(upstream_ops, average):
    gen = torch.Generator().manual_seed(3)
    feats = torch.randn(200, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    coors = torch.randint(0, 4, (200, 3), generator=gen, dtype=torch.int32)
    coors[::17, 1] = -1  # dropped points
    scatter = upstream_ops.DynamicScatter([1, 1, 1], [0, 0, 0, 4, 4, 4], average)
    voxel_feats, voxel_coors = scatter(feats, coors)

    f, c = feats.detach().numpy(), coors.numpy()
    valid = (c >= 0).all(1)
    keys = sorted({tuple(k) for k in c[valid]})
    np.testing.assert_array_equal(voxel_coors.numpy(), np.array(keys))
    reduce = np.mean if average else np.max
    groups = [np.flatnonzero(valid & (c == k).all(1)) for k in keys]
    expected = np.stack([reduce(f[g], 0) for g in groups])
    np.testing.assert_allclose(voxel_feats.detach().numpy(), expected, rtol=1e-12)

    grad = torch.randn(voxel_feats.shape, generator=gen, dtype=torch.float64)
    voxel_feats.backward(grad)
    expected_grad = np.zeros_like(f)
    for v, g in enumerate(groups):
        if average:
            expected_grad[g] = grad[v].numpy() / len(g)
        else:
            winner = g[np.argmax(f[g], 0)]
            expected_grad[winner, np.arange(f.shape[1])] = grad[v].numpy()
    np.testing.assert_allclose(feats.grad.numpy(), expected_grad, rtol=1e-12)
    assert (feats.grad.numpy()[~valid] == 0).all()


def _import_in_subprocess(checkout, env_extra):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        sys.path.append({str(checkout)!r})
        import render_pretrain.compat
        try:
            import projects.BEVFusion.bevfusion.ops.bev_pool.bev_pool_ext as ext
            print(getattr(ext, 'ORIGIN', ext.__spec__.origin))
        except ImportError as err:
            print('ImportError', err)
    """)
    import os
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True, env=env, cwd=str(REPO_ROOT)).stdout.strip().splitlines()[-1]


@pytest.mark.subprocess
def test_a_compiled_extension_keeps_precedence_and_the_shim_can_be_switched_off(tmp_path):
    """The stand-in answers only when no extension is found; opt out by env."""
    checkout = tmp_path / 'mmdetection3d'
    package = checkout / 'projects' / 'BEVFusion' / 'bevfusion' / 'ops' / 'bev_pool'
    package.mkdir(parents=True)
    for parent in (package, package.parent, package.parent.parent):
        (parent / '__init__.py').write_text('')
    assert _import_in_subprocess(checkout, {}) == 'render_pretrain.bevfusion_ops'
    assert _import_in_subprocess(
        checkout, {'RENDER_PRETRAIN_BEVFUSION_CPU_OPS': '0'}).startswith('ImportError')
    # a built extension (here a stand-in module file) is found first and kept
    (package / 'bev_pool_ext.py').write_text("ORIGIN = 'compiled'\n")
    assert _import_in_subprocess(checkout, {}) == 'compiled'
