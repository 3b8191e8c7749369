"""BEVDet test-time suppression as official (per-task Scale-NMS, circle NMS), schedule (#21.5)."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet3d.models.layers import circle_nms
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules
import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers the modules)
from projects.BEVDetCompat.bevdet_compat.bevdet_head import circle_nms_torch
from render_pretrain.paths import REPO_ROOT

PAPER_CFG = REPO_ROOT / 'configs/bevdet/bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py'
SUBSET_CFGS = sorted((REPO_ROOT / 'configs/bevdet').glob('*pct*.py'))
# HuangJunJie2017/BEVDet configs/bevdet/bevdet-r50.py (commit fb9cae662a), test_cfg.pts
OFFICIAL_TEST_CFG = dict(
    pc_range=[-51.2, -51.2], post_center_limit_range=[-61.2, -61.2, -10.0, 61.2, 61.2, 10.0],
    max_per_img=500, max_pool_nms=False, min_radius=[4, 12, 10, 1, 0.85, 0.175],
    score_threshold=0.1, out_size_factor=8, voxel_size=[0.1, 0.1], pre_max_size=1000,
    post_max_size=83, nms_type=['rotate', 'rotate', 'rotate', 'circle', 'rotate', 'rotate'],
    nms_thr=[0.2, 0.2, 0.2, 0.2, 0.2, 0.5],
    nms_rescale_factor=[1.0, [0.7, 0.7], [0.4, 0.55], 1.1, [1.0, 1.0], [4.5, 9.0]])


@pytest.fixture(scope='module')
def paper_cfg():
    register_all_modules(init_default_scope=False)
    init_default_scope('mmdet3d')
    return Config.fromfile(str(PAPER_CFG))


@pytest.fixture(scope='module')
def head(paper_cfg):
    cfg = dict(paper_cfg.model.pts_bbox_head, in_channels=8, share_conv_channel=8,
               train_cfg=paper_cfg.model.train_cfg.pts, test_cfg=paper_cfg.model.test_cfg.pts)
    return MODELS.build(cfg).eval()


def boxes(rows):
    """(x, y, w, l) rows -> (N, 9) boxes (z 0, h 1.7, yaw 0, no velocity)."""
    return torch.tensor([[x, y, 0.0, w, ln, 1.7, 0.0, 0.0, 0.0] for x, y, w, ln in rows])


def test_paper_config_test_cfg_is_official(paper_cfg):
    assert paper_cfg.model.pts_bbox_head.type == 'BEVDetCenterHead'
    assert paper_cfg.model.test_cfg.pts.to_dict() == OFFICIAL_TEST_CFG
    # z range and test resize of the same official version
    assert paper_cfg.grid_config.z == [-10.0, 10.0, 20.0]
    aug = [t for t in paper_cfg.test_pipeline if t['type'] == 'BEVDetImageAug'][0]
    assert aug['resize_test'] == 0.04 and aug['test_mode']
    warm, steps = paper_cfg.param_scheduler
    assert (warm['type'], warm['by_epoch'], warm['end'], warm['start_factor']) == \
        ('LinearLR', False, 500, 1e-3)
    assert steps['milestones'] == [16, 22] and paper_cfg.optim_wrapper.clip_grad is None


def test_circle_nms_squared_distance_hand_case():
    # scores 0.9, 0.8, 0.7, 0.6: #1 is 0.9 m from #0 (0.81 m^2 <= 1: suppressed),
    # #2 is 1.2 m from #0 (1.44 m^2: kept), #3 is 0.5 m from #2 (suppressed by #2)
    centers = torch.tensor([[0.0, 0.0], [0.9, 0.0], [0.0, 1.2], [0.3, 1.6]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert circle_nms_torch(centers, scores, 1.0, 83).tolist() == [0, 2]
    assert circle_nms_torch(centers, scores, 1.0, 1).tolist() == [0]
    assert circle_nms_torch(centers, scores, 0.5, 83).tolist() == [0, 1, 2]  # 0.81 > 0.5


def test_circle_nms_equals_mmdet3d_numba_circle_nms():
    gen = np.random.default_rng(0)
    dets = np.concatenate([gen.uniform(-5, 5, (60, 2)), gen.permutation(60)[:, None] / 60.0],
                          1).astype(np.float32)
    ref = circle_nms(dets, 1.0, post_max_size=20)
    ours = circle_nms_torch(torch.from_numpy(dets[:, :2]), torch.from_numpy(dets[:, 2]), 1.0, 20)
    assert ours.tolist() == list(ref)


def test_scale_nms_rescales_per_class_for_the_nms_only(head):
    # task 5: pedestrian (x4.5), traffic_cone (x9.0), IoU threshold 0.5.
    # Two 0.6 m squares 1.5 m apart: unscaled IoU 0. Pedestrians: 2.7 m squares,
    # overlap 1.2 x 2.7 -> IoU 3.24 / 11.34 = 0.29 (both kept); cones: 5.4 m squares,
    # overlap 3.9 x 5.4 -> IoU 21.06 / 37.26 = 0.57 (the lower one is suppressed).
    pair = boxes([(10.0, 0.0, 0.6, 0.6), (11.5, 0.0, 0.6, 0.6)])
    scores = torch.tensor([0.9, 0.8])
    b, s, lab = head.task_nms(5, pair, scores, torch.tensor([0, 0]))
    assert s.tolist() == pytest.approx([0.9, 0.8])
    torch.testing.assert_close(b, pair)  # predicted sizes are kept
    b, s, lab = head.task_nms(5, pair, scores, torch.tensor([1, 1]))
    assert s.tolist() == pytest.approx([0.9]) and lab.tolist() == [1]
    torch.testing.assert_close(b, pair[:1])
    # 0.5 m apart: pedestrians overlap 2.2 x 2.7 -> IoU 0.69 > 0.5: suppressed
    close = boxes([(10.0, 0.0, 0.6, 0.6), (10.5, 0.0, 0.6, 0.6)])
    assert head.task_nms(5, close, scores, torch.tensor([0, 0]))[1].tolist() == \
        pytest.approx([0.9])


def test_scale_nms_task_factor_and_threshold(head):
    # task 2: bus x0.4, trailer x0.55, IoU threshold 0.2. Two 3 x 12 m buses 6 m apart
    # along their length: unscaled IoU 6 x 3 / 54 = 0.33 > 0.2 (stock NMS suppresses);
    # scaled 1.2 x 4.8 m, 6 m apart: no overlap, both kept.
    pair = boxes([(0.0, 20.0, 12.0, 3.0), (6.0, 20.0, 12.0, 3.0)])
    _, s, _ = head.task_nms(2, pair, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]))
    assert len(s) == 2
    # task 0 (car, x1.0): 4 x 2 m cars 1 m apart, IoU 6 / 10 = 0.6 > 0.2
    cars = boxes([(0.0, 0.0, 4.0, 2.0), (1.0, 0.0, 4.0, 2.0)])
    assert len(head.task_nms(0, cars, torch.tensor([0.9, 0.8]), torch.tensor([0, 0]))[1]) == 1


def test_barrier_task_uses_circle_nms(head):
    # task 3 (barrier): circle NMS, min_radius 1 m^2, no rescale; long thin barriers
    # 0.9 m apart side by side do not overlap as boxes but are within the circle
    pair = boxes([(0.0, 0.0, 0.5, 2.5), (0.9, 0.0, 0.5, 2.5), (0.0, 1.2, 0.5, 2.5)])
    _, s, _ = head.task_nms(3, pair, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 0, 0]))
    assert s.tolist() == pytest.approx([0.9, 0.7])


def test_predict_by_feat_merges_tasks_with_global_labels(head):
    torch.manual_seed(0)
    from mmdet3d.structures import LiDARInstance3DBoxes
    feats = [torch.randn(1, 8, 32, 32)]  # >= max_num (500) cells
    with torch.no_grad():
        preds = head(feats)
    out = head.predict_by_feat(preds, [dict(box_type_3d=LiDARInstance3DBoxes)])[0]
    assert len(out.scores_3d) == len(out.labels_3d) == len(out.bboxes_3d)
    assert out.labels_3d.max() < 10 and bool((out.scores_3d >= 0.1).all())


def test_bad_per_task_lists_are_errors(paper_cfg):
    cfg = dict(paper_cfg.model.pts_bbox_head, in_channels=8, share_conv_channel=8,
               test_cfg=dict(paper_cfg.model.test_cfg.pts, nms_thr=[0.2, 0.2]))
    with pytest.raises(ValueError, match='nms_thr has 2 entries for 6 tasks'):
        MODELS.build(cfg)
    bad = list(OFFICIAL_TEST_CFG['nms_rescale_factor'])
    bad[1] = [0.7]
    cfg['test_cfg'] = dict(paper_cfg.model.test_cfg.pts, nms_rescale_factor=bad)
    with pytest.raises(ValueError, match='task 1 has 1 entries for 2 classes'):
        MODELS.build(cfg)


@pytest.mark.parametrize('config', SUBSET_CFGS, ids=lambda p: p.name)
@pytest.mark.parametrize('iters_per_epoch', [1, 5, 44])
def test_subset_warm_up_ends_within_the_run(config, iters_per_epoch):
    from mmengine.optim.scheduler import LinearLR
    cfg = Config.fromfile(str(config))
    total = cfg.train_cfg.max_epochs * iters_per_epoch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warm = [s for s in cfg.param_scheduler if s['type'] == 'LinearLR']
    assert len(warm) == 1
    kwargs = {k: v for k, v in warm[0].items() if k not in ('type', 'convert_to_iter_based')}
    if warm[0].get('convert_to_iter_based'):
        sched = LinearLR.build_iter_from_epoch(opt, epoch_length=iters_per_epoch, **kwargs)
    else:
        sched = LinearLR(opt, **kwargs)
    assert sched.end <= total
    assert not sched.by_epoch and sched.end == iters_per_epoch  # one epoch of this subset
    assert math.isclose(warm[0]['start_factor'], 1e-3)
