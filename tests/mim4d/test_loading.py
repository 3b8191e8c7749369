"""MIM4DLoadMultiViewSweeps + MIM4DSweepImageAug on the synthetic world."""
import copy

import numpy as np
import pytest
import torch

from mmdet3d.registry import DATASETS

from .conftest import build_dataset
from render_pretrain.compat import DataFileError


@pytest.fixture(scope='module')
def dataset(tiny_cfg, synthetic_infos):
    # Training augmentation with random flips (seeded): the matrices must
    # follow the images.
    return build_dataset(tiny_cfg, synthetic_infos, is_train=True)


def _numpy_projection(points: np.ndarray, meta: dict):
    """Independent projection of (P, 3) key-frame LiDAR points into every view.

    ``cam2img @ lidar2cam``, division by the depth, then the 2D pixel map of
    the augmentation (``img_aug_matrix``: ``A[:2, :2] @ (u, v) + A[:2, 3]``).

    Returns:
        tuple: (V, P, 2) augmented pixels (u, v) and (V, P) depths, metres.
    """
    hom = np.concatenate([points, np.ones((len(points), 1))], 1)
    cam = np.einsum('vij,pj->vpi', np.asarray(meta['lidar2cam'], np.float64), hom)[..., :3]
    proj = np.einsum('vij,vpj->vpi', np.asarray(meta['cam2img'], np.float64)[:, :3, :3], cam)
    depth = proj[..., 2]
    uv = proj[..., :2] / np.maximum(depth, 1e-6)[..., None]
    aug = np.asarray(meta['img_aug_matrix'], np.float64)
    return np.einsum('vij,vpj->vpi', aug[:, :2, :2], uv) + aug[:, None, :2, 3], depth


def _colour_differences(sample, sweep: int, ignore_ego_motion: bool) -> torch.Tensor:
    """Mean |BGR difference| (0-255) of static points seen in the key frame and a sweep.

    Static points: LiDAR returns above the ground beyond the sidewalks
    (|x| > 10.2 m in the LiDAR frame: building facades of the synthetic
    street), so moving agents do not count.
    """
    meta = sample['data_samples'].metainfo
    imgs = sample['inputs']['img'].float()
    points = sample['inputs']['points'][:, :3]
    num_cams = meta['num_cams']
    height, width = imgs.shape[-2:]
    uv, depth = _numpy_projection(points.double().numpy(), meta)
    pix, depth = torch.as_tensor(uv).round().long(), torch.as_tensor(depth)
    inside = ((depth > 1.0) & (pix[..., 0] >= 0) & (pix[..., 0] < width) & (pix[..., 1] >= 0)
              & (pix[..., 1] < height))
    static = (points[:, 2] > -1.0) & (points[:, 0].abs() > 10.2)
    diffs = []
    for cam in range(num_cams):
        key_view, sweep_view = cam, sweep * num_cams + cam
        sweep_pix = pix[key_view] if ignore_ego_motion else pix[sweep_view]
        keep = inside[key_view] & inside[sweep_view] & static
        key_rgb = imgs[key_view][:, pix[key_view][keep, 1], pix[key_view][keep, 0]]
        sweep_rgb = imgs[sweep_view][:, sweep_pix[keep, 1], sweep_pix[keep, 0]]
        diffs.append((key_rgb - sweep_rgb).abs().mean(0))
    return torch.cat(diffs)


def test_key_frame_and_sweep_see_the_same_colour(dataset):
    samples = [dataset[i] for i in range(len(dataset))]
    moving = [s for s in samples
              if not s['data_samples'].metainfo['sweep_repeated'].any()
              and np.linalg.norm(s['data_samples'].metainfo['sweep2lidar'][2, :3, 3]) > 1.0]
    assert len(moving) >= 2
    ours = torch.cat([_colour_differences(s, 2, False) for s in moving])
    static_rig = torch.cat([_colour_differences(s, 2, True) for s in moving])
    assert ours.numel() > 500
    # The loader's transforms put a static point on pixels of the same
    # colour (JPEG noise aside); ignoring the ego-motion does not.
    assert float(ours.median()) < 6.0
    assert float(ours.median()) < 0.6 * float(static_rig.median())


def test_outputs_shapes_order_and_augmentation(dataset):
    sample = dataset[5]
    meta = sample['data_samples'].metainfo
    num_sweeps, num_cams = meta['num_sweeps'], meta['num_cams']
    assert (num_sweeps, num_cams) == (3, 6)
    assert sample['inputs']['img'].shape == (18, 3, 64, 176)
    assert meta['cam2img'].shape == meta['lidar2cam'].shape == (18, 4, 4)
    assert meta['sweep2lidar'].shape == (3, 4, 4)
    assert np.allclose(meta['sweep2lidar'][0], np.eye(4))
    # rigid transforms
    rot = meta['sweep2lidar'][:, :3, :3]
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-5)
    # the same augmentation for every sweep of a camera, flips drawn per camera
    aug = meta['img_aug_matrix'].reshape(num_sweeps, num_cams, 4, 4)
    assert np.allclose(aug, aug[:1])
    # sweeps are older than the key frame, newest first
    offsets = meta['sweep_time_offsets']
    assert offsets[0] == 0 and np.all(np.diff(offsets) < 0)
    paths = meta['img_path']
    assert '/samples/CAM_FRONT/' in paths[0] and '/sweeps/CAM_FRONT/' in paths[num_cams]


def test_first_frame_of_a_scene_repeats_the_key_frame(dataset):
    first = [dataset[i] for i in range(len(dataset))
             if dataset[i]['data_samples'].metainfo['sweep_repeated'].all(axis=1)[1:].all()]
    assert first, 'the synthetic world has a scene start in its train split'
    sample = first[0]
    meta = sample['data_samples'].metainfo
    num_cams = meta['num_cams']
    imgs = sample['inputs']['img']
    assert not meta['sweep_repeated'][0].any()
    assert torch.equal(imgs[:num_cams], imgs[num_cams:2 * num_cams])
    assert np.allclose(meta['lidar2cam'][:num_cams], meta['lidar2cam'][2 * num_cams:])
    assert np.allclose(meta['sweep_time_offsets'], 0.0)


def test_missing_camera_sweeps_raise_a_clear_error(dataset):
    results = dataset.get_data_info(3)
    results.pop('cam_sweeps')
    loader = dataset.pipeline.transforms[1]
    with pytest.raises(KeyError, match='cam_sweeps'):
        loader(results)


def _dataset_at(cfg, infos, data_root: str, dataset_type: str = None):
    """The tiny config's training dataset with ONLY the dataset's root overridden."""
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = data_root
    ds_cfg.ann_file = str(infos['train'])
    if dataset_type is not None:
        ds_cfg.type = dataset_type
    return DATASETS.build(ds_cfg)


def test_overriding_the_dataset_root_moves_key_frames_and_sweeps(tiny_cfg, synthetic_infos,
                                                                 tmp_path):
    # A second "world": the same files under another root.
    other = tmp_path / 'other_world'
    other.symlink_to(synthetic_infos['root'], target_is_directory=True)
    dataset = _dataset_at(tiny_cfg, synthetic_infos, str(other) + '/')
    meta = dataset[5]['data_samples'].metainfo
    assert meta['num_sweeps'] == 3
    assert '/sweeps/' in meta['img_path'][meta['num_cams']]
    for path in meta['img_path']:
        assert path.startswith(str(other) + '/'), path


def test_a_missing_data_root_is_an_error_naming_it(tiny_cfg, synthetic_infos, tmp_path):
    missing = str(tmp_path / 'no_such_world') + '/'
    with pytest.raises(FileNotFoundError, match='no_such_world'):
        _dataset_at(tiny_cfg, synthetic_infos, missing)


def test_the_loader_needs_the_dataset_root(tiny_cfg, synthetic_infos):
    dataset = _dataset_at(tiny_cfg, synthetic_infos, str(synthetic_infos['root']) + '/',
                          dataset_type='NuScenesDataset')
    # a KeyError from the loader, wrapped by the dataset shim with the sample's files
    with pytest.raises(DataFileError, match='MIM4DNuScenesDataset') as info:
        dataset[5]
    assert isinstance(info.value.__cause__, KeyError)


def test_sweep_image_aug_refuses_a_rotation():
    """The sweeps of a camera share one resize / crop / flip; there is no rotation to set."""
    import projects.MIM4D.mim4d  # noqa: F401  (registers the transforms)
    from mmdet3d.registry import TRANSFORMS
    with pytest.raises(TypeError, match='does not rotate'):
        TRANSFORMS.build(dict(type='MIM4DSweepImageAug', final_dim=(32, 88),
                              resize_lim=(1.0, 1.0), rot_lim=(-5.4, 5.4)))
    aug = TRANSFORMS.build(dict(type='MIM4DSweepImageAug', final_dim=(32, 88),
                                resize_lim=(1.0, 1.0), is_train=True))
    assert aug.rot_lim is None and aug.is_train
