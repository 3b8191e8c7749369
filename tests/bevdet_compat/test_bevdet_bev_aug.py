"""BEVDet's BEV data augmentation moves boxes and BEV features alike (#21.4)."""
import math

import numpy as np
import pytest
import torch

from mmdet3d.structures import LiDARInstance3DBoxes
from projects.BEVDetCompat.bevdet_compat import BEVDetBEVAug
from tests.bevdet_compat.test_bevdet_compat import PAPER_CFG, TINY_CFG, build_model, make_batch

CASES = {  # name: (rotation deg, scale, flip x, flip y)
    'rotate': (20.0, 1.0, False, False),
    'rotate_negative': (-22.5, 1.0, False, False),
    'scale': (0.0, 1.05, False, False),
    'flip_dx': (0.0, 1.0, True, False),
    'flip_dy': (0.0, 1.0, False, True),
    'all': (-17.0, 0.95, True, True),
}


def by_hand(xy, rot_deg, scale, flip_dx, flip_dy):
    """Rotate counter-clockwise, scale, then mirror: the expected lidar-frame (x, y)."""
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    x, y = xy
    x, y = scale * (c * x - s * y), scale * (s * x + c * y)
    return np.array([-x if flip_dx else x, -y if flip_dy else y])


@pytest.fixture(scope='module')
def tiny():
    _, model = build_model(TINY_CFG)
    return model


@pytest.mark.parametrize('case', sorted(CASES))
def test_marker_cell_moves_with_its_box(case, tiny):
    rot, scale, fdx, fdy = CASES[case]
    data = make_batch(tiny, batch_size=1, num_cams=1)
    samples = data['data_samples']
    vt = tiny.img_view_transformer
    like = torch.zeros(0)
    geom0 = vt.get_geometry(*tiny.lift_matrices(samples, like))  # (1, 1, D, H, W, 3)
    d, h, w = geom0.shape[2] // 2, geom0.shape[3] // 2, geom0.shape[4] // 2
    p = geom0[0, 0, d, h, w]
    assert 5.0 < p[:2].norm() < 40.0  # inside the +-51.2 m grid after any case
    yaw0, vel0 = 0.3, (1.0, 0.5)
    box = LiDARInstance3DBoxes(torch.tensor([[p[0], p[1], p[2] - 0.8, 4.0, 2.0, 1.6, yaw0,
                                              *vel0]]), box_dim=9)
    aug = BEVDetBEVAug(rot_lim=(rot, rot), scale_lim=(scale, scale),
                       flip_dx_ratio=float(fdx), flip_dy_ratio=float(fdy))
    out = aug.transform(dict(gt_bboxes_3d=box))
    moved = out['gt_bboxes_3d']
    # boxes, against a hand computation
    centre = moved.gravity_center[0]
    np.testing.assert_allclose(centre[:2].numpy(), by_hand(p[:2].tolist(), rot, scale, fdx, fdy),
                               atol=1e-4)
    assert centre[2].item() == pytest.approx(p[2].item() * scale, abs=1e-4)
    np.testing.assert_allclose(moved.dims[0].numpy(), np.array([4.0, 2.0, 1.6]) * scale,
                               rtol=1e-5)
    heading = by_hand((math.cos(yaw0), math.sin(yaw0)), rot, 1.0, fdx, fdy)
    yaw = moved.yaw[0].item()
    np.testing.assert_allclose([math.cos(yaw), math.sin(yaw)], heading, atol=1e-5)
    np.testing.assert_allclose(moved.tensor[0, 7:9].numpy(), by_hand(vel0, rot, scale, fdx, fdy),
                               atol=1e-5)
    # the BEV features: one marker feature at frustum point p, lifted with bda_matrix
    samples[0].set_metainfo(dict(bda_matrix=out['bda_matrix']))
    geom = vt.get_geometry(*tiny.lift_matrices(samples, like))
    volume = torch.zeros(geom.shape[:-1] + (1, ))
    volume[0, 0, d, h, w, 0] = 1.0
    bev = vt.bev_pool(geom, volume)[0, 0]  # (N_y, N_x)
    row, col = divmod(int(bev.flatten().argmax()), bev.shape[1])
    assert bev.sum() == 1.0
    lower, cell = vt.grid_lower, vt.dx
    box_col = int(math.floor((centre[0].item() - float(lower[0])) / float(cell[0])))
    box_row = int(math.floor((centre[1].item() - float(lower[1])) / float(cell[1])))
    assert (row, col) == (box_row, box_col)
    if case != 'scale':  # the marker left its un-augmented cell
        col0 = int(math.floor((p[0].item() - float(lower[0])) / float(cell[0])))
        row0 = int(math.floor((p[1].item() - float(lower[1])) / float(cell[1])))
        assert (row, col) != (row0, col0)


def test_training_pipelines_use_the_official_bda():
    from mmengine.config import Config
    for path in (PAPER_CFG, TINY_CFG):
        cfg = Config.fromfile(str(path))
        names = [t['type'] for t in cfg.train_pipeline]
        aug = cfg.train_pipeline[names.index('BEVDetBEVAug')]
        assert names.index('LoadAnnotations3D') < names.index('BEVDetBEVAug') < \
            names.index('ObjectRangeFilter')
        assert (tuple(aug['rot_lim']), tuple(aug['scale_lim']), aug['flip_dx_ratio'],
                aug['flip_dy_ratio']) == ((-22.5, 22.5), (0.95, 1.05), 0.5, 0.5)
        assert 'bda_matrix' in cfg.meta_keys
        assert 'BEVDetBEVAug' not in [t['type'] for t in cfg.test_pipeline]


def _draws(aug, count):
    return [aug.transform(dict(gt_bboxes_3d=LiDARInstance3DBoxes(torch.zeros(0, 9), box_dim=9)))
            ['bda_matrix'] for _ in range(count)]


def test_random_draws_cover_the_ranges():
    aug = BEVDetBEVAug()
    aug.set_epoch_randomness(seed=0, rank=0, epoch=0, stream=0)  # as SeededRandomnessHook does
    mats = _draws(aug, 200)
    scales = [abs(np.linalg.det(m[:2, :2])) ** 0.5 for m in mats]
    flips_x = [np.linalg.det(m[:2, :2]) < 0 for m in mats]
    assert 0.95 <= min(scales) < 0.96 and 1.04 < max(scales) <= 1.05
    assert 0.35 < np.mean(flips_x) < 0.65


def test_draws_follow_the_run_key():
    """Same (seed, rank, epoch) -> same draws; another rank or epoch -> others."""
    def first_draws(**key):
        aug = BEVDetBEVAug()
        aug.set_epoch_randomness(**dict(dict(seed=0, rank=0, epoch=0, stream=0), **key))
        return np.stack(_draws(aug, 4))
    base = first_draws()
    np.testing.assert_array_equal(base, first_draws())
    for other in (dict(rank=1), dict(epoch=1), dict(seed=1)):
        assert not np.allclose(base, first_draws(**other)), other
