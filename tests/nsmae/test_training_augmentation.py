"""NS-MAE end to end with the TRAINING image augmentation on the real frame.

Resize, crop, flip and rotation (``BEVFusionCompatImageAug3D(is_train=True)``): the
augmentation matrix, the PV depth target, the frustum geometry the detector
pools and the pixel each rendered ray belongs to are checked against an
independent numpy projection of the LiDAR points (cam2img, lidar2cam, then
the 2D augmentation applied to pixels) and against the raw image pixels.
"""
import copy

import numpy as np
import torch

from mmdet3d.registry import DATASETS
from .conftest import REAL_INFO, TINY_CL, build_model, load_config, preprocess
from .test_losses import _depth_target

TRAIN_AUG = dict(type='BEVFusionCompatImageAug3D', final_dim=[64, 176], resize_lim=[0.95, 1.25],
                 resize_relative=True, bot_pct_lim=[0.0, 0.1], rot_lim=[-5.4, 5.4],
                 rand_flip=True, is_train=True, seed=4)


def _real_dataset(real_frame, pipeline):
    cfg = load_config(TINY_CL)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=str(real_frame) + '/', ann_file=REAL_INFO,
                  data_prefix={key: '' for key in ds_cfg.data_prefix}, pipeline=pipeline)
    return DATASETS.build(ds_cfg)


def test_training_augmentation_end_to_end(real_frame):
    cfg = load_config(TINY_CL)
    pipeline = [TRAIN_AUG if t['type'] == 'BEVFusionCompatImageAug3D' else t
                for t in copy.deepcopy(cfg.train_dataloader.dataset.pipeline)]
    item = _real_dataset(real_frame, pipeline)[0]
    raw = _real_dataset(real_frame, [
        dict(type='LoadMultiViewImageFromFiles', to_float32=True, color_type='color',
             num_views=6),
        dict(type='Pack3DDetInputs', keys=['img'], meta_keys=('cam2img', ))])[0]
    aug = np.asarray(item['data_samples'].metainfo['img_aug_matrix'], np.float64)
    linear = aug[:, :2, :2]
    # the draw covers every augmentation: flips, rotations, scale changes
    dets = np.linalg.det(linear)
    assert (dets < 0).any() and (dets > 0).any()
    angles = np.degrees(np.arctan2(linear[:, 1, 0], linear[:, 0, 0]))
    rotation = np.where(dets > 0, np.abs(angles), 180.0 - np.abs(angles))
    assert rotation.max() > 1.0 and (np.abs(aug[:, 1, 3]) > 1.0).all()  # rotated, cropped

    # 1. the matrix maps raw pixels to augmented pixels: sample the raw image
    # at inv(A) (p - t) for the augmented pixels p (nearest raw pixel)
    out_img = item['inputs']['img'].numpy()  # (6, 3, 64, 176)
    raw_img = raw['inputs']['img'].numpy()  # (6, 3, 900, 1600)
    vs, us = np.meshgrid(np.arange(4, 60, 2.0), np.arange(4, 172, 2.0), indexing='ij')
    pix = np.stack([us.ravel(), vs.ravel()], 1)
    for cam in range(6):
        src = (pix - aug[cam, :2, 3]) @ np.linalg.inv(linear[cam]).T
        col, row = np.rint(src[:, 0]).astype(int), np.rint(src[:, 1]).astype(int)
        ok = (col >= 0) & (col < 1600) & (row >= 0) & (row < 900)
        assert ok.mean() > 0.9
        sampled = raw_img[cam][:, row[ok], col[ok]]
        seen = out_img[cam][:, pix[ok, 1].astype(int), pix[ok, 0].astype(int)]
        mirrored = raw_img[cam][:, row[ok], 1599 - col[ok]]
        err, err_mirror = np.abs(seen - sampled).mean(), np.abs(seen - mirrored).mean()
        # measured 10-21 grey levels (nearest raw pixel of a ~9x downscale)
        # against 40-64 for the mirrored mapping
        assert err < 25.0 and err < 0.5 * err_mirror, (cam, err, err_mirror)

    # 2. the detector's depth target = numpy projection of ALL points
    model = build_model(TINY_CL, seed=0)
    captured = {}
    model.view_transform.register_forward_pre_hook(
        lambda module, args: captured.update(args=args))
    data = preprocess(model, [item])
    feats = model.extract_feat(data['inputs'], data['data_samples'])
    meta = data['data_samples'][0].metainfo
    points = data['inputs']['points'][0][:, :3].double().numpy()
    cam2img = np.asarray(meta['cam2img'], np.float64)
    lidar2cam = np.asarray(meta['lidar2cam'], np.float64)
    expected = _depth_target(points, cam2img, lidar2cam, aug, (64, 176), 8)
    assert (expected > 0).sum() > 150
    np.testing.assert_allclose(feats['depth_target'][0].double().numpy(), expected,
                               rtol=1e-4, atol=1e-3)

    # 3. the frustum the detector pools: project its LiDAR-frame samples back
    # with numpy; each lands on BEVFusion's pixel grid (linspace(0, W - 1, w))
    # at its bin depth, i.e. inside the 8 x 8 cell of the rendered ray (i, j)
    # whose depth / RGB targets it is compared with
    args = captured['args']
    geometry = model.view_transform.get_geometry(*args[2:6])[0].double().numpy()
    num_bins = geometry.shape[1]
    homo = np.concatenate([geometry, np.ones(geometry.shape[:-1] + (1, ))], -1)
    cam = np.einsum('nij,ndhwj->ndhwi', lidar2cam, homo)[..., :3]
    depth = cam[..., 2]
    uv = np.einsum('nij,ndhwj->ndhwi', cam2img[:, :3, :3], cam)[..., :2] / depth[..., None]
    uv = np.einsum('nij,ndhwj->ndhwi', linear, uv) + aug[:, None, None, None, :2, 3]
    bins = np.arange(1.0, 40.0, 1.0)
    assert num_bins == len(bins)
    np.testing.assert_allclose(depth, np.broadcast_to(bins[None, :, None, None], depth.shape),
                               atol=1e-3)
    grid_u, grid_v = np.linspace(0, 175, 22), np.linspace(0, 63, 8)
    np.testing.assert_allclose(uv[..., 0], np.broadcast_to(grid_u, depth.shape), atol=2e-2)
    np.testing.assert_allclose(uv[..., 1], np.broadcast_to(grid_v[:, None], depth.shape),
                               atol=2e-2)
    cell_col = np.floor((uv[..., 0] + 0.5) / 8).astype(int)
    cell_row = np.floor((uv[..., 1] + 0.5) / 8).astype(int)
    assert (cell_col == np.arange(22)).all() and (cell_row == np.arange(8)[:, None]).all()

    # 4. the loss runs on the augmented batch
    losses = model.loss(data['inputs'], data['data_samples'])
    assert all(torch.isfinite(v) and float(v) > 0 for v in losses.values())
