"""Stock mmdet3d CenterPoint (packaged config, reduced grid) trains on the CPU.

Real mmcv Voxelization, real spconv (forward and backward through the compat
shim), real CenterHead targets.
"""
import pytest
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmdet3d.utils import register_all_modules
from mmengine.structures import InstanceData

from tools.utils import load_config

TINY_CENTERPOINT = 'configs/centerpoint/centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py'  # noqa: E501


def make_scene(generator: torch.Generator, num_points: int = 4000):
    """Points on a ground plane plus dense points inside two boxes (LiDAR frame)."""
    # (x, y, z_bottom, dx, dy, dz, yaw, vx, vy): nuScenes boxes carry velocity.
    boxes = torch.tensor([[5.0, 3.0, -1.0, 4.2, 1.9, 1.6, 0.3, 2.0, 0.5],
                          [-8.0, -6.0, -1.0, 0.7, 0.7, 1.8, 0.0, 0.0, 0.0]])
    ground = torch.rand(num_points, 3, generator=generator) * torch.tensor([50.0, 50.0, 0.0]) \
        - torch.tensor([25.0, 25.0, 1.8])
    inside = []
    for box in boxes:
        local = (torch.rand(500, 3, generator=generator) - 0.5) * box[3:6]
        c, s = torch.cos(box[6]), torch.sin(box[6])
        rot = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
        xy = local[:, :2] @ rot.T + box[:2]
        inside.append(torch.cat([xy, local[:, 2:] + box[2] + box[5] / 2], dim=1))
    xyz = torch.cat([ground] + inside)
    extra = torch.rand(len(xyz), 2, generator=generator)
    gt = InstanceData(bboxes_3d=LiDARInstance3DBoxes(boxes, box_dim=9),
                      labels_3d=torch.tensor([0, 8]))
    sample = Det3DDataSample(metainfo=dict(box_type_3d=LiDARInstance3DBoxes))
    sample.gt_instances_3d = gt
    return torch.cat([xyz, extra], dim=1), sample


@pytest.fixture(scope='module')
def centerpoint():
    register_all_modules()
    cfg = load_config(TINY_CENTERPOINT)
    assert cfg.model.type == 'CenterPoint'
    assert cfg.model.pts_middle_encoder.type == 'SparseEncoder'
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_forward_backward_reaches_sparse_encoder(centerpoint):
    gen = torch.Generator().manual_seed(0)
    points, sample = make_scene(gen)
    data = centerpoint.data_preprocessor(
        dict(inputs=dict(points=[points]), data_samples=[sample]), training=True)
    voxels = data['inputs']['voxels']
    assert voxels['coors'].shape[1] == 4 and len(voxels['coors']) > 100
    centerpoint.train()
    losses = centerpoint.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in centerpoint.pts_middle_encoder.parameters() if p.grad is not None]
    assert grads, 'no gradient reached pts_middle_encoder'
    assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.overfit
def test_overfitting_one_scene_lowers_loss(centerpoint):
    gen = torch.Generator().manual_seed(1)
    points, sample = make_scene(gen)
    data = centerpoint.data_preprocessor(
        dict(inputs=dict(points=[points]), data_samples=[sample]), training=True)
    optimizer = torch.optim.AdamW(centerpoint.parameters(), lr=2e-3)
    centerpoint.train()
    history = []
    for _ in range(8):
        optimizer.zero_grad()
        losses = centerpoint.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert history[-1] < 0.7 * history[0], history
