"""Seeded randomness: key derivation, augmentation in real DataLoader workers, masks per rank.

The end-to-end runs (same seed -> same losses, exact resume) are in
``test_reproducible_training.py``.
"""
import copy
from functools import partial

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.dataset import pseudo_collate, worker_init_fn
from torch.utils.data import DataLoader, Dataset

import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers BEVDetImageAug)
import projects.MIM4D.mim4d  # noqa: F401  (registers the MIM4D modules)
import projects.NSMAE.nsmae  # noqa: F401  (registers the NS-MAE modules)
from mmdet3d.registry import DATASETS, MODELS, TRANSFORMS
from mmdet3d.utils import register_all_modules
from projects.common.seeded_randomness_hook import find_seeded_transforms
from render_pretrain.paths import REPO_ROOT
from render_pretrain.seeding import (PHASE_TRAIN, derive_numpy_generator, derive_seed_sequence,
                                     derive_torch_generator)

register_all_modules(init_default_scope=True)

NUM_WORKERS = 2
NUM_SAMPLES = 4  # worker 0 loads samples 0 and 2, worker 1 samples 1 and 3

# One training-time configuration per seeded transform (random resize, crop, flip, rotation).
AUGMENTATIONS = {
    'BEVFusionCompatImageAug3D': dict(
        type='BEVFusionCompatImageAug3D', final_dim=(32, 88), resize_lim=(0.5, 0.7),
        bot_pct_lim=(0.0, 0.2), rot_lim=(-5.4, 5.4), rand_flip=True, is_train=True),
    'BEVDetImageAug': dict(type='BEVDetImageAug', final_size=(32, 88)),
    'MIM4DSweepImageAug': dict(type='MIM4DSweepImageAug', final_dim=(32, 88),
                               resize_lim=(0.9, 1.2), resize_relative=True,
                               bot_pct_lim=(0.0, 0.2), rand_flip=True, is_train=True),
}


def _same_sample() -> dict:
    """The one sample every index serves: 2 cameras x 2 sweeps of 64 x 176 images."""
    image = np.zeros((64, 176, 3), np.float32)
    image[20:30, 40:60] = 255.0
    return dict(img=[image.copy() for _ in range(4)], cam2img=np.tile(np.eye(3), (4, 1, 1)),
                num_cams=2, img_aug_matrix=np.tile(np.eye(4), (4, 1, 1)))


class SameSampleDataset(Dataset):
    """Serves the same sample at every index through a one-transform pipeline."""

    def __init__(self, transform_cfg: dict) -> None:
        self.pipeline = Compose([TRANSFORMS.build(copy.deepcopy(transform_cfg))])

    def __len__(self) -> int:
        return NUM_SAMPLES

    def __getitem__(self, index: int) -> dict:
        out = self.pipeline(_same_sample())
        info = torch.utils.data.get_worker_info()
        return dict(worker=info.id, matrix=np.stack(out['img_aug_matrix']))


def _load(transform_cfg: dict, seed: int, epoch=None, rank: int = 0) -> list:
    """(worker id, img_aug_matrix) of every index from a fresh 2-worker DataLoader.

    With ``epoch`` the transforms get the key that ``SeededRandomnessHook``
    sets before an epoch; without, they run on their fallback.
    """
    dataset = SameSampleDataset(transform_cfg)
    if epoch is not None:
        for stream, transform in enumerate(find_seeded_transforms(dataset)):
            transform.set_epoch_randomness(seed, rank, epoch, stream)
    loader = DataLoader(dataset, batch_size=1, num_workers=NUM_WORKERS, collate_fn=pseudo_collate,
                        worker_init_fn=partial(worker_init_fn, num_workers=NUM_WORKERS,
                                               rank=rank, seed=seed),
                        multiprocessing_context='fork')
    return [(batch['worker'][0], batch['matrix'][0]) for batch in loader]


def test_derived_generators_are_stable_functions_of_the_keys():
    first = derive_numpy_generator(7, 0, 3).uniform(size=4)
    np.testing.assert_array_equal(first, derive_numpy_generator(7, 0, 3).uniform(size=4))
    for other in [(7, 1, 3), (7, 0, 4), (8, 0, 3), (7, 0, 3, 0), (7, 0)]:
        assert not np.allclose(first, derive_numpy_generator(*other).uniform(size=4)), other
    # numpy's SeedSequence alone pads with zeros: (1, 2) == (1, 2, 0); ours does not.
    assert (np.random.SeedSequence([1, 2]).generate_state(2)
            == np.random.SeedSequence([1, 2, 0]).generate_state(2)).all()
    assert (derive_seed_sequence(1, 2).generate_state(2)
            != derive_seed_sequence(1, 2, 0).generate_state(2)).any()
    a = torch.rand(4, generator=derive_torch_generator(7, 0, 3))
    assert torch.equal(a, torch.rand(4, generator=derive_torch_generator(7, 0, 3)))
    assert not torch.equal(a, torch.rand(4, generator=derive_torch_generator(7, 1, 3)))
    for bad in [(-1, ), (1.5, ), ()]:
        with pytest.raises(ValueError):
            derive_seed_sequence(*bad)


@pytest.mark.parametrize('name', sorted(AUGMENTATIONS))
def test_augmentation_differs_across_workers_epochs_ranks_and_repeats_per_seed(name):
    cfg = AUGMENTATIONS[name]
    run = _load(cfg, seed=0, epoch=0)
    assert [worker for worker, _ in run] == [0, 1, 0, 1]
    mats = [m for _, m in run]
    # the same sample in two workers, and twice in one worker: different draws
    assert not np.allclose(mats[0], mats[1])
    assert not np.allclose(mats[0], mats[2])
    # a second run with the same seed: the same draws
    for (_, a), (_, b) in zip(run, _load(cfg, seed=0, epoch=0)):
        np.testing.assert_array_equal(a, b)
    # another epoch, rank or seed: other draws at every index
    for other in (_load(cfg, seed=0, epoch=1), _load(cfg, seed=0, epoch=0, rank=1),
                  _load(cfg, seed=1, epoch=0)):
        for (_, a), (_, b) in zip(run, other):
            assert not np.allclose(a, b)


def test_without_the_hook_workers_still_differ_and_repeat_per_seed():
    """Fallback (no key): seeded from torch's global RNG, which mmengine seeds per worker."""
    cfg = AUGMENTATIONS['BEVFusionCompatImageAug3D']
    run = _load(cfg, seed=3)
    mats = [m for _, m in run]
    assert not np.allclose(mats[0], mats[1])
    for (_, a), (_, b) in zip(run, _load(cfg, seed=3)):
        np.testing.assert_array_equal(a, b)


def test_hook_finds_the_transforms_through_dataset_wrappers(synthetic_infos):
    """RepeatDataset, CBGSDataset, ConcatDataset: each seeded transform once, in order."""
    cfg = Config.fromfile(str(REPO_ROOT / 'projects/NSMAE/configs/'
                              'nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'))
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(data_root=str(synthetic_infos['root']) + '/',
                  ann_file=str(synthetic_infos['train']), lazy_init=True)
    wrapped = DATASETS.build(dict(
        type='ConcatDataset', lazy_init=True,
        datasets=[dict(type='RepeatDataset', times=2, dataset=ds_cfg, lazy_init=True),
                  dict(type='CBGSDataset', dataset=ds_cfg, lazy_init=True)]))
    found = find_seeded_transforms(wrapped)
    inner = [wrapped.datasets[0].dataset, wrapped.datasets[1].dataset]
    expected = [t for ds in inner for t in ds.pipeline.transforms
                if type(t).__name__ == 'BEVFusionCompatImageAug3D']
    assert len(expected) == 2 and [id(t) for t in found] == [id(t) for t in expected]


def _tiny_model(project: str, config: str):
    cfg = Config.fromfile(str(REPO_ROOT / 'projects' / project / 'configs' / config))
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _assert_keyed_draws(draws, iteration: int):
    """``draws(rank, iteration)`` -> tensors: the same key repeats every one of
    them exactly; another rank or the next iteration changes every one.

    Returns:
        The draws of rank 0 at ``iteration``.
    """
    first = draws(0, iteration)
    again = draws(0, iteration)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for key in [(1, iteration), (0, iteration + 1)]:
        other = draws(*key)
        for a, b in zip(first, other):
            assert not torch.equal(a, b), key
    return first


def test_nsmae_masks_differ_across_ranks_and_repeat_per_key():
    from tests.nsmae.conftest import preprocess, synthetic_item
    model = _tiny_model('NSMAE', 'nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py').eval()
    data = preprocess(model, [synthetic_item(seed=0)])

    def masks(rank: int, iteration: int):
        model.set_random_key(0, rank, PHASE_TRAIN, iteration)
        with torch.no_grad():
            out = model.extract_feat(data['inputs'], data['data_samples'])
        return out['img_mask'], out['kept_voxel_coors']

    img_mask, kept = _assert_keyed_draws(masks, 5)
    assert 0 < img_mask.float().mean() < 1 and 0 < len(kept)


def test_mim4d_masks_and_rays_differ_across_ranks_and_repeat_per_key():
    model = _tiny_model('MIM4D', 'mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py')
    imgs = torch.rand(1, 2, 6, 3, 64, 176, generator=torch.Generator().manual_seed(0))
    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(1)) * 20 - 10
    lidar2img = torch.eye(4).expand(1, 6, 4, 4).clone()
    lidar2img[..., :3, :3] = torch.tensor([[80.0, 88.0, 0], [0, 32.0, -80.0], [0, 1.0, 0]])

    def draws(rank: int, iteration: int):
        model.set_random_key(0, rank, PHASE_TRAIN, iteration)
        _, mask = model.img_masker(imgs, model.generator('cpu'))
        rays = model.render_head.sample_rays(points, torch.zeros(500, dtype=torch.long),
                                             lidar2img, (64, 176), model.generator('cpu'))
        return mask, rays.pixels

    mask, _ = _assert_keyed_draws(draws, 3)
    assert 0 < mask.float().mean() < 1
