"""Each NS-MAE loss = its paper weight x a raw term computed here in numpy.

Hand-made sample (conftest.synthetic_item: two cameras at the LiDAR origin
facing walls at 8 m and 10 m, ground at -1.6 m, a uint8 image); the model's
rendered outputs are captured with forward hooks, every target is rebuilt
here from the raw inputs (image bytes, LiDAR points, dropped voxels).
"""
import numpy as np

from .conftest import TINY_CL, build_model, load_config, preprocess, synthetic_item

PAPER_CL = 'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py'


def _area_mean(img, stride):
    """(N, C, H, W) -> (N, C, H / s, W / s): mean of each s x s block."""
    n, c, h, w = img.shape
    return img.reshape(n, c, h // stride, stride, w // stride, stride).mean((3, 5))


def _depth_target(points, cam2img, lidar2cam, img_aug, shape, stride):
    """Min camera depth of the points per stride x stride cell, 0 where none."""
    homo = np.concatenate([points, np.ones((len(points), 1))], 1)
    cam = np.einsum('nij,pj->npi', lidar2cam, homo)[..., :3]  # (N, P, 3)
    depth = cam[..., 2]
    uvw = np.einsum('nij,npj->npi', cam2img[:, :3, :3], cam)
    uv = uvw[..., :2] / np.maximum(depth, 1e-5)[..., None]
    uv = np.einsum('nij,npj->npi', img_aug[:, :2, :2], uv) + img_aug[:, None, :2, 3]
    col = np.floor((uv[..., 0] + 0.5) / stride).astype(int)
    row = np.floor((uv[..., 1] + 0.5) / stride).astype(int)
    out_h, out_w = shape[0] // stride, shape[1] // stride
    ok = (depth > 1e-3) & (col >= 0) & (col < out_w) & (row >= 0) & (row < out_h)
    target = np.full((len(cam2img), out_h, out_w), np.inf)
    cams = np.broadcast_to(np.arange(len(cam2img))[:, None], depth.shape)
    np.minimum.at(target, (cams[ok], row[ok], col[ok]), depth[ok])
    target[np.isinf(target)] = 0
    return target


def test_each_loss_is_weight_times_independent_raw_term():
    paper_weights = dict(load_config(PAPER_CL).model.loss_weights)
    model = build_model(TINY_CL, seed=3, loss_weights=paper_weights)
    item = synthetic_item(seed=13)
    item['inputs']['img'] = item['inputs']['img'].round().clamp(0, 255)  # uint8 values
    raw_img = item['inputs']['img'].numpy().astype(np.float64)  # (N, 3, H, W), BGR bytes
    captured = {}
    model.pv_render_head.register_forward_hook(
        lambda module, args, out: captured.update(pv=out))
    model.bev_render_head.register_forward_hook(
        lambda module, args, out: captured.update(bev=out))
    model.pts_middle_encoder.register_forward_pre_hook(
        lambda module, args: captured.update(kept=args[1].clone()))
    data = preprocess(model, [item])
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_rgb', 'loss_pv_depth', 'loss_bev_depth'}

    # RGB: the raw image bytes (BGR as loaded, RGB for the model) / 255,
    # area-downsampled to the 8-pixel feature stride; MSE
    rgb_target = _area_mean(raw_img[:, ::-1] / 255.0, 8)
    rgb = captured['pv']['rgb'][0].detach().double().numpy()
    assert rgb.shape == rgb_target.shape == (2, 3, 8, 22)
    expected_rgb = 10000.0 * np.mean((rgb - rgb_target) ** 2)

    # PV depth: min LiDAR depth per 8 x 8 cell from ALL points, L1 in metres
    meta = data['data_samples'][0].metainfo
    depth_target = _depth_target(
        item['inputs']['points'][:, :3].double().numpy(), np.asarray(meta['cam2img']),
        np.asarray(meta['lidar2cam']), np.asarray(meta['img_aug_matrix']), (64, 176), 8)
    valid = depth_target > 0
    assert valid.sum() > 100
    depth = captured['pv']['depth'][0].detach().double().numpy()
    expected_pv = 0.01 * np.abs(depth - depth_target)[valid].mean()

    # BEV: top voxel centre (metres) of the DROPPED voxels per 8 x 8-voxel
    # cell, [X, Y] layout; L1 in metres with weight 0.05 = the released 0.01
    # per voxel index (0.2 m)
    all_coors = {tuple(c) for c in data['inputs']['voxels']['coors'].tolist()}
    kept = {tuple(c) for c in captured['kept'].tolist()}
    dropped = np.array(sorted(all_coors - kept))  # (V, 4) (batch, z, y, x)
    assert len(dropped) == round(0.9 * len(all_coors))
    height = np.full((20, 20), -np.inf)
    np.maximum.at(height, (dropped[:, 3] // 8, dropped[:, 2] // 8),
                  -5.0 + 0.2 * (dropped[:, 1] + 0.5))
    bev_valid = np.isfinite(height)
    pred_height = captured['bev']['height'][0].detach().double().numpy()
    l1_metres = np.abs(pred_height - height)[bev_valid].mean()
    expected_bev = 0.05 * l1_metres

    np.testing.assert_allclose(float(losses['loss_rgb']), expected_rgb, rtol=1e-4)
    np.testing.assert_allclose(float(losses['loss_pv_depth']), expected_pv, rtol=1e-4)
    np.testing.assert_allclose(float(losses['loss_bev_depth']), expected_bev, rtol=1e-4)
    # the stated unit: the released weight 0.01 on the height in voxel indices
    l1_voxel_index = np.abs(pred_height / 0.2 - height / 0.2)[bev_valid].mean()
    np.testing.assert_allclose(float(losses['loss_bev_depth']), 0.01 * l1_voxel_index,
                               rtol=1e-4)
    assert all(float(value) > 0 for value in losses.values())
