"""MIM4D never shows a withheld target frame to its own context (train mode).

Two leaks: at the start of a scene the loader repeats the key frame into the
context slots (the context would be built from the target's own images), and
with several target frames one backbone call would normalise the context
frames with BatchNorm statistics that include the target frames' images.
"""
import copy

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmdet3d.registry import MODELS

from .conftest import build_dataset


@pytest.fixture(scope='module')
def dataset(tiny_cfg, synthetic_infos):
    return build_dataset(tiny_cfg, synthetic_infos, is_train=True)


def _first(dataset, scene_start: bool) -> int:
    for index in range(len(dataset)):
        repeated = dataset[index]['data_samples'].metainfo['sweep_repeated']
        if (repeated[1:].all() if scene_start else not repeated.any()):
            return index
    pytest.fail(f'no sample with scene_start={scene_start} in the synthetic train split')


def _model(cfg, target_frames=(0, )):
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.seed = 0
    model_cfg.target_frames = list(target_frames)
    # fixed targets: with bi-temporal targets a context slot may itself be a target
    model_cfg.bitemporal = False
    model = MODELS.build(model_cfg)
    model.train()  # BatchNorm in training mode: batch statistics
    return model


def _losses(model, data, imgs) -> dict:
    model.generator(torch.device('cpu')).manual_seed(0)  # the same masks and rays
    with torch.no_grad():
        losses = model(dict(data['inputs'], imgs=imgs), data['data_samples'], mode='loss')
    return {name: float(value) for name, value in losses.items()}


def test_loader_names_the_frame_of_every_slot(dataset):
    start = dataset[_first(dataset, True)]['data_samples'].metainfo
    normal = dataset[_first(dataset, False)]['data_samples'].metainfo
    num_cams = start['num_cams']
    # Scene start: every slot holds the key frame; full history: its own sweep.
    assert np.array_equal(start['sweep_source'], np.zeros((3, num_cams), dtype=np.int64))
    assert np.array_equal(normal['sweep_source'], np.repeat(np.arange(3)[:, None], num_cams, 1))


@pytest.mark.parametrize('scene_start', [True, False])
def test_repeated_context_slots_change_no_loss_term(tiny_cfg, dataset, single_thread,
                                                    scene_start):
    model = _model(tiny_cfg)
    data = model.data_preprocessor(pseudo_collate([dataset[_first(dataset, scene_start)]]),
                                   True)
    imgs = data['inputs']['imgs']
    num_cams = data['data_samples'][0].metainfo['num_cams']
    changed = imgs.clone()
    generator = torch.Generator().manual_seed(1)
    changed[:, num_cams:] = torch.randn(changed[:, num_cams:].shape, generator=generator)
    base, other = _losses(model, data, imgs), _losses(model, data, changed)
    # the predicted volume's terms and the direct volume's (both rendered, as released)
    assert set(base) == {'loss_rgb', 'loss_depth', 'loss_rgb_direct', 'loss_depth_direct'}
    assert all(value > 0 for value in base.values())
    if scene_start:
        # The context slots hold copies of the withheld key frame: they are
        # fully masked, so what they hold changes nothing.
        for name in base:
            assert other[name] == pytest.approx(base[name], rel=1e-6, abs=0), name
    else:
        # Real previous frames are the context the prediction comes from; the
        # direct volume is lifted from the target's own images only.
        for name in ('loss_rgb', 'loss_depth'):
            assert abs(other[name] - base[name]) > 1e-4 * base[name], name
        for name in ('loss_rgb_direct', 'loss_depth_direct'):
            assert other[name] == pytest.approx(base[name], rel=1e-6, abs=0), name


def test_target_frames_do_not_enter_the_context_batch_statistics(tiny_cfg, dataset,
                                                                 single_thread):
    model = _model(tiny_cfg, target_frames=(0, 1))
    full = [i for i in range(len(dataset))
            if not dataset[i]['data_samples'].metainfo['sweep_repeated'].any()][:2]
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in full]), True)
    imgs = data['inputs']['imgs']
    num_cams = data['data_samples'][0].metainfo['num_cams']

    def features(images):
        model.generator(torch.device('cpu')).manual_seed(0)
        with torch.no_grad():
            return model.extract_feat(dict(data['inputs'], imgs=images), data['data_samples'])

    base = features(imgs)
    changed = imgs.clone()
    changed[:, :num_cams] = changed[:, :num_cams] * 3.0 + 1.0  # the key frame (target 0)
    other = features(changed)
    assert base['context_frames'] == [0, 1, 2]
    # Frames 1 and 2 (the context of target 0) and target 0's prediction do not
    # depend on target 0's images, in training mode ...
    assert torch.allclose(other['volumes'][:, 1:], base['volumes'][:, 1:], rtol=0, atol=1e-6)
    assert torch.allclose(other['predicted'][0], base['predicted'][0], rtol=0, atol=1e-6)
    # ... while target 1, whose context holds frame 0, does.
    assert (other['predicted'][1] - base['predicted'][1]).abs().max() > 1e-3
