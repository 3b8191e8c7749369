"""Sparse LiDAR frames: any number of kept voxels trains with finite losses."""
import warnings

import pytest
import torch

from .conftest import TINY_CL, TINY_L, build_model, preprocess, synthetic_item


def _batch_norms(model):
    return [m for name, m in model.named_modules()
            if name.startswith(('pts_voxel_encoder', 'pts_middle_encoder'))
            and isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize('config', [TINY_L, TINY_CL], ids=['lidar', 'camera-lidar'])
@pytest.mark.parametrize('kept', [0, 1, 2, 3])
def test_few_kept_voxels_train_with_finite_losses(config, kept):
    model = build_model(config)
    item = synthetic_item(seed=2)
    if config == TINY_L:
        del item['inputs']['img']
    data = preprocess(model, [item])
    num_voxels = len(data['inputs']['voxels']['coors'])
    model.voxel_mask_ratio = 1.0 - kept / num_voxels
    model.train()
    sites = []
    handle = model.pts_middle_encoder.conv_input.register_forward_pre_hook(
        lambda module, args: sites.append(args[0].features.shape[0]))
    losses = model.loss(data['inputs'], data['data_samples'])
    handle.remove()
    assert losses and all(bool(torch.isfinite(v)) for v in losses.values()), losses
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    norms = _batch_norms(model)
    assert norms and all(m.training for m in norms)  # train mode restored
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in norms)
    # exactly the kept voxels reached the sparse encoder (its first-layer gradient
    # may be 0: one voxel after a ReLU can be inactive), and the loss reaches the
    # encoder's parameters through the BEV render head
    assert sites == ([kept] if kept else []), sites  # no voxel: the encoder is skipped
    if kept:
        assert model.pts_middle_encoder.conv_input[0].weight.grad is not None


def test_single_voxel_uses_running_stats_and_leaves_them():
    """With one kept voxel, the first BatchNorm of the sparse encoder sees one
    value per channel: it normalises with its running statistics and does not
    update them (one value is no statistic); the output equals an eval-mode
    BatchNorm applied to that value."""
    model = build_model(TINY_L)
    item = synthetic_item(seed=2)
    del item['inputs']['img']
    data = preprocess(model, [item])
    model.voxel_mask_ratio = 1.0 - 1 / len(data['inputs']['voxels']['coors'])
    norm = model.pts_middle_encoder.conv_input[1]
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    mean, var = norm.running_mean.clone(), norm.running_var.clone()
    seen = {}
    handle = norm.register_forward_hook(lambda m, i, o: seen.update(x=i[0].clone(), y=o.clone()))
    model.train()
    model.loss(data['inputs'], data['data_samples'])
    handle.remove()
    assert seen['x'].shape[0] == 1
    expected = (seen['x'] - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(seen['y'], expected)
    assert torch.equal(norm.running_mean, mean) and torch.equal(norm.running_var, var)


def test_zero_voxel_mask_ratio_warns_that_bev_target_is_empty():
    with pytest.warns(UserWarning, match='BEV target .* is empty by construction'):
        build_model(TINY_L, voxel_mask_ratio=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        build_model(TINY_L, voxel_mask_ratio=0.5)
