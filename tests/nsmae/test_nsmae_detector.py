"""NSMAE detector: losses, masking of inputs vs targets, switches, freeze."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from projects.NSMAE.nsmae import NSMAEFreezeLiDAREncoderHook
from render_pretrain.camera_geometry import render_depth_map_from_points
from .conftest import (TINY_C, TINY_CL, TINY_L, build_model, preprocess,
                       synthetic_item)

LOSS_NAMES = {'loss_rgb', 'loss_pv_depth', 'loss_bev_depth'}


def _run_loss(model, items):
    data = preprocess(model, items)
    losses = model.loss(data['inputs'], data['data_samples'])
    for name, value in losses.items():
        assert torch.isfinite(value), name
    total = sum(losses.values())
    total.backward()
    return losses, data


def _grad_norm(module):
    grads = [p.grad.norm() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def test_real_frame_loss_forward_backward(real_item):
    model = build_model(TINY_CL)
    assert real_item['inputs']['img'].shape == (6, 3, 64, 176)
    losses, _ = _run_loss(model, [real_item])
    assert set(losses) == LOSS_NAMES
    assert all(float(v) > 0 for v in losses.values())
    for name in ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                 'fusion_layer', 'pv_render_head', 'bev_render_head'):
        assert _grad_norm(getattr(model, name)) > 0, name
    assert model.img_masker.mask_token.grad.abs().sum() > 0


def test_real_frame_depth_target_matches_independent_projection(real_item):
    """PV depth target = min depth of ALL points per 8x8 cell (numpy reference)."""
    model = build_model(TINY_CL, voxel_mask_ratio=0.9)
    data = preprocess(model, [real_item])
    feats = model.extract_feat(data['inputs'], data['data_samples'])
    meta = data['data_samples'][0].metainfo
    points = data['inputs']['points'][0][:, :3].double().numpy()
    cam2img = np.asarray(meta['cam2img'], np.float64)
    proj = cam2img @ np.asarray(meta['lidar2cam'], np.float64)  # (6, 4, 4)
    cam = np.einsum('nij,pj->npi', proj[:, :3, :3], points) + proj[:, None, :3, 3]
    depth = cam[..., 2]
    uv = cam[..., :2] / np.maximum(depth, 1e-5)[..., None]
    # the image augmentation acts on pixels, after the perspective division
    aug = np.asarray(meta['img_aug_matrix'], np.float64)
    uv = np.einsum('nij,npj->npi', aug[:, :2, :2], uv) + aug[:, None, :2, 3]
    u, v = uv[..., 0], uv[..., 1]
    col, row = np.floor((u + 0.5) / 8).astype(int), np.floor((v + 0.5) / 8).astype(int)
    ok = (depth > 1e-3) & (col >= 0) & (col < 22) & (row >= 0) & (row < 8)
    expected = np.full((6, 8, 22), np.inf)
    cams = np.broadcast_to(np.arange(6)[:, None], depth.shape)
    np.minimum.at(expected, (cams[ok], row[ok], col[ok]), depth[ok])
    expected[np.isinf(expected)] = 0
    target = feats['depth_target'][0].double().numpy()
    assert (expected > 0).sum() > 150  # the real frame covers many cells
    np.testing.assert_allclose(target, expected, rtol=1e-4, atol=1e-3)
    # the input depth map only sees the points of kept voxels (voxel ids
    # recomputed here in numpy) and nothing in masked patches
    depth_in = feats['depth_input'][0, :, 0]
    lidar2img = model._camera_meta(data['data_samples'], depth_in, 6)['lidar2img'][0]
    all_xyz = data['inputs']['points'][0][:, :3]
    full = render_depth_map_from_points(all_xyz, lidar2img, (64, 176))
    low = np.asarray(model.point_cloud_range[:3])
    ijk = np.floor((points - low) / np.asarray(model.voxel_size)).astype(np.int64)
    inside = ((ijk >= 0) & (ijk < np.asarray(model.grid_shape))).all(1)
    dims = model.grid_shape[::-1]  # (z, y, x), as the voxel coors
    kept_zyx = feats['kept_voxel_coors'][:, 1:].numpy()
    from_kept = inside & np.isin(np.ravel_multi_index(ijk[:, ::-1].T, dims, mode='clip'),
                                 np.ravel_multi_index(kept_zyx.T, dims))
    assert 0 < from_kept.sum() < 0.2 * len(points)
    pixel_mask = feats['img_mask'][0].repeat_interleave(8, 1).repeat_interleave(8, 2)
    expected_in = render_depth_map_from_points(
        all_xyz[torch.from_numpy(from_kept)], lidar2img, (64, 176)).masked_fill(pixel_mask, 0)
    assert 0 < int((depth_in > 0).sum()) < 0.2 * int((full > 0).sum())
    torch.testing.assert_close(depth_in, expected_in)
    # a kept point can be hidden behind a dropped one in the full map: never nearer
    hit = depth_in > 0
    assert bool((depth_in[hit] >= full[hit]).all())
    assert bool((depth_in[pixel_mask] == 0).all())


def test_synthetic_batch_masking_inputs_and_targets():
    model = build_model(TINY_CL)
    with torch.no_grad():
        model.img_masker.mask_token.fill_(0.37)
    encoder_inputs = {}
    model.pts_middle_encoder.register_forward_pre_hook(
        lambda module, args: encoder_inputs.update(coors=args[1].clone()))
    items = [synthetic_item(seed=0), synthetic_item(seed=1)]
    losses, data = _run_loss(model, items)
    assert set(losses) == LOSS_NAMES
    feats = model.extract_feat(data['inputs'], data['data_samples'])
    imgs = data['inputs']['imgs']
    assert imgs.shape == (2, 2, 3, 64, 176)
    # images: exactly 50 % of the 8x8 patches of every image are the token
    mask = feats['img_mask']
    assert mask.shape == (2, 2, 8, 22)
    assert mask.flatten(2).sum(-1).eq(88).all()
    pixel_mask = mask.repeat_interleave(8, 2).repeat_interleave(8, 3)
    masked_input = feats['img_input'].permute(0, 1, 3, 4, 2)[pixel_mask]
    assert torch.allclose(masked_input, torch.full_like(masked_input, 0.37))
    assert torch.equal(feats['img_input'].permute(0, 1, 3, 4, 2)[~pixel_mask],
                       imgs.permute(0, 1, 3, 4, 2)[~pixel_mask])
    # RGB target: the UNMASKED raw input image (BGR as loaded -> RGB) / 255,
    # the mean of each 8 x 8 pixel block (numpy, from the items, not from the
    # preprocessor's normalisation)
    raw = np.stack([item['inputs']['img'].numpy() for item in items])[:, :, ::-1] / 255.0
    expected = raw.reshape(2, 2, 3, 8, 8, 22, 8).mean((4, 6))
    np.testing.assert_allclose(feats['rgb_target'].numpy(), expected, atol=1e-5)
    # voxels: 90 % dropped, absent from the encoder input
    coors = data['inputs']['voxels']['coors']
    kept, dropped = feats['kept_voxel_coors'], feats['dropped_voxel_coors']
    assert len(kept) + len(dropped) == len(coors)
    assert len(dropped) == math.floor(0.9 * len(coors) + 0.5)
    seen = {tuple(c) for c in encoder_inputs['coors'].tolist()}
    assert seen.isdisjoint({tuple(c) for c in dropped.tolist()})
    assert len(seen) == len(kept)
    # BEV target: topmost dropped voxel per 8x8-voxel cell (X, Y layout)
    target, valid = model._bev_target(dropped, 2, feats['bev'].shape[-2:])
    ref = np.full((2, 20, 20), -np.inf)
    d = dropped.numpy()
    np.maximum.at(ref, (d[:, 0], d[:, 3] // 8, d[:, 2] // 8), -5.0 + 0.2 * (d[:, 1] + 0.5))
    assert np.array_equal(valid.numpy(), np.isfinite(ref))
    assert np.allclose(target.numpy()[valid.numpy()], ref[np.isfinite(ref)], atol=1e-5)
    # walls at 8 m and 10 m in front of the cameras are in the PV target
    depth_target = feats['depth_target']
    assert torch.allclose(depth_target[:, 0, 0], torch.full((2, 22), 8.0), atol=1e-3)
    assert torch.allclose(depth_target[:, 1, 0], torch.full((2, 22), 10.0), atol=1e-3)


@pytest.mark.parametrize('overrides', [
    dict(img_masker=dict(type='NSMAEImageMasker', patch_size=8, mask_ratio=0.0),
         voxel_mask_ratio=0.0),
    dict(img_masker=dict(type='NSMAEImageMasker', patch_size=8, mask_ratio=1.0,
                         shared_across_views=True),
         voxel_mask_ratio=1.0),
])
def test_mask_ratio_extremes(overrides):
    model = build_model(TINY_CL, **overrides)
    losses, data = _run_loss(model, [synthetic_item(seed=2)])
    assert set(losses) == LOSS_NAMES
    feats = model.extract_feat(data['inputs'], data['data_samples'])
    ratio = overrides['voxel_mask_ratio']
    num_voxels = len(data['inputs']['voxels']['coors'])
    assert len(feats['dropped_voxel_coors']) == round(ratio * num_voxels)
    assert bool(feats['img_mask'].all()) == (ratio == 1.0)
    assert bool(feats['img_mask'].any()) == (ratio == 1.0)
    if ratio == 0.0:  # nothing masked out: no BEV target, finite zero loss
        assert float(losses['loss_bev_depth']) == 0.0


def test_camera_only_and_lidar_only():
    camera = build_model(TINY_C)
    losses, data = _run_loss(camera, [synthetic_item(seed=3)])
    assert set(losses) == LOSS_NAMES
    feats = camera.extract_feat(data['inputs'], data['data_samples'])
    assert len(feats['kept_voxel_coors']) == 0  # every voxel is a target
    assert float(feats['depth_input'].abs().sum()) == 0.0  # depth_input='none'
    lidar = build_model(TINY_L)
    items = [synthetic_item(seed=4)]
    del items[0]['inputs']['img']
    losses, _ = _run_loss(lidar, items)
    assert set(losses) == {'loss_bev_depth'}
    assert float(losses['loss_bev_depth']) > 0


@pytest.mark.overfit
def test_overfitting_one_sample_halves_losses():
    model = build_model(TINY_CL, seed=0)
    data = preprocess(model, [synthetic_item(seed=5)])
    # 40 steps: with the per-bin shared Conv2d(C, 4) head the colour must come
    # through the frustum features (measured: RGB 1.74 -> 0.19, PV depth
    # 0.25 -> 0.10, BEV 0.65 -> 0.03 at lr 1e-2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    history = []
    for _ in range(40):
        losses = model.loss(data['inputs'], data['data_samples'])
        history.append({k: float(v) for k, v in losses.items()})
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    first, last = history[0], history[-1]
    assert last['loss_rgb'] < 0.5 * first['loss_rgb'], history
    assert last['loss_pv_depth'] < 0.5 * first['loss_pv_depth'], history
    assert last['loss_bev_depth'] < 0.5 * first['loss_bev_depth'], history


def test_freeze_hook_keeps_lidar_encoder_fixed():
    model = build_model(TINY_CL)
    data = preprocess(model, [synthetic_item(seed=6)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)

    def step():
        model.train()
        optimizer.zero_grad()
        sum(model.loss(data['inputs'], data['data_samples']).values()).backward()
        optimizer.step()

    step()
    hook = NSMAEFreezeLiDAREncoderHook(freeze_epoch=1)
    runner = SimpleNamespace(model=model, epoch=0)
    hook.before_train_epoch(runner)
    assert not model.lidar_frozen
    runner.epoch = 1
    hook.before_train_epoch(runner)
    assert model.lidar_frozen
    lidar_before = {k: v.clone() for k, v in model.pts_middle_encoder.state_dict().items()}
    img_before = {k: v.clone() for k, v in model.img_backbone.state_dict().items()}
    step()
    assert not model.pts_middle_encoder.training  # BN stays in eval mode
    assert all(not p.requires_grad for p in model.pts_middle_encoder.parameters())
    for key, value in model.pts_middle_encoder.state_dict().items():
        assert torch.equal(value, lidar_before[key]), key
    changed = [k for k, v in model.img_backbone.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, img_before[k])]
    assert len(changed) > 10
    assert model.fusion_layer[0].weight.grad is not None


def test_predict_returns_render_outputs():
    model = build_model(TINY_CL)
    model.eval()
    data = preprocess(model, [synthetic_item(seed=7)], training=False)
    with torch.no_grad():
        samples = model.predict(data['inputs'], data['data_samples'])
        raw = model._forward(data['inputs'], data['data_samples'])
    out = samples[0].render_outputs
    assert out.rgb.shape == out.rgb_target.shape == (2, 3, 8, 22)
    assert out.depth.shape == out.depth_target.shape == (2, 8, 22)
    assert out.img_input.shape == (2, 3, 64, 176)
    assert out.bev_height.shape == out.bev_target.shape == (20, 20)
    assert float(out.rgb.min()) >= 0 and float(out.rgb.max()) <= 1
    assert float(out.depth.min()) >= 1.0 - 1e-4 and float(out.depth.max()) <= 39.0 + 1e-3
    assert set(raw) == {'pv', 'bev', 'bev_target'}


def test_stock_sparse_encoder_with_yx_bev_layout():
    """Stock mmdet3d SparseEncoder (Z,Y,X) + camera BEV in [.., Y, X]."""
    cfg_encoder = dict(
        type='SparseEncoder', in_channels=5, sparse_shape=[41, 160, 160],
        order=('conv', 'norm', 'act'), norm_cfg=dict(type='BN1d', eps=1e-3, momentum=0.01),
        base_channels=16, output_channels=128,  # the tiny config's (stock SECOND) channels
        encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (0, 1, 1)), (0, 0)),
        block_type='basicblock')
    model_yx = build_model(TINY_CL, pts_middle_encoder=cfg_encoder, bev_axes='yx',
                           view_transform=dict(
                               type='BEVFusionCompatDepthLSSTransform', in_channels=32,
                               out_channels=16,
                               image_size=[64, 176], feature_size=[8, 22],
                               xbound=[-24.0, 24.0, 1.2], ybound=[-24.0, 24.0, 1.2],
                               zbound=[-10.0, 10.0, 20.0], dbound=[1.0, 40.0, 1.0],
                               downsample=2, bev_axes='yx'))
    losses, data = _run_loss(model_yx, [synthetic_item(seed=9)])
    assert set(losses) == LOSS_NAMES
    model_xy = build_model(TINY_CL)
    coors = data['inputs']['voxels']['coors']
    height_yx, valid_yx = model_yx._bev_target(coors, 1, (20, 20))
    height_xy, valid_xy = model_xy._bev_target(coors, 1, (20, 20))
    assert torch.equal(valid_yx, valid_xy.transpose(1, 2))
    assert torch.equal(height_yx, height_xy.transpose(1, 2))
    # walls (up to z = 3 m) stand at x = 8 m (camera 0) and x = -10 m
    # (camera 1): BEV rows (x + 24) // 2.4 = 13 and 5 in the X,Y layout;
    # around x = 0 only the ground (z = -1.6 m) is hit
    assert float(height_xy[0, 13].max()) > 2.0
    assert float(height_xy[0, 5].max()) > 2.0
    assert float(height_xy[0, 9][valid_xy[0, 9]].max()) < -1.0
    assert float(height_yx[0, :, 13].max()) > 2.0
