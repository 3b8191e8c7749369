"""Checkpoints -> the BEV map-segmentation detector (layout ``bevseg``), strictly.

The targets are models built from projects/BEVSeg's configs, so every
converted tensor must land on a real parameter of the right shape:
mit-han-lab's seg release (``heads.map.classifier.*``) into the paper-scale
C+L model, and our tiny NS-MAE pre-training into the tiny seg model's
encoders (the pair the transfer experiment uses).
"""
from collections import OrderedDict

import pytest
import torch

from tools.utils import load_config, prepare_registries
from render_pretrain.converters import convert_checkpoint_file, convert_state_dict, get_table
from render_pretrain.paths import REPO_ROOT
from tests.converters.fake_checkpoints import MIT_PREFIXES, random_tensors, spconv2_to_spconv1

SEG_CONFIGS = REPO_ROOT / 'projects/BEVSeg/configs'
PAPER_SEG = SEG_CONFIGS / ('bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_'
                           'nus-seg.py')
TINY_SEG = SEG_CONFIGS / 'bevfusionseg_lidar-cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py'
TINY_NSMAE = REPO_ROOT / 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'
# mit-han-lab's seg release names the map head ``heads.map.`` (no detection head)
MIT = {**{ours: mit for ours, mit in MIT_PREFIXES.items() if ours != 'bbox_head.'},
       'seg_head.': 'heads.map.'}
ENCODERS = ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder', 'fusion_layer')


def build(config):
    from mmdet3d.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(prepare_registries(load_config(str(config))).model)


def shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def read_converted(path):
    """The converted state dict, spconv ``_metadata`` included (as load_from reads it)."""
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_mit_seg_release_loads_strictly_into_the_paper_seg_model(tmp_path):
    model = build(PAPER_SEG)
    target = model.state_dict()
    ours = random_tensors(shapes(target), seed=3, dtype=torch.float16)
    mit = OrderedDict()
    for key, value in ours.items():
        prefix = next(p for p in MIT if key.startswith(p))
        mit[MIT[prefix] + key[len(prefix):]] = spconv2_to_spconv1(value) if value.dim() == 5 \
            else value
    for grid in ('dx', 'bx', 'nx', 'frustum'):  # frozen parameters in the release
        mit[f'encoders.camera.vtransform.{grid}'] = torch.zeros(3)
    assert mit['heads.map.classifier.0.weight'].shape == (512, 512, 3, 3)
    torch.save({'state_dict': mit}, tmp_path / 'mit.pth')
    result = convert_checkpoint_file(tmp_path / 'mit.pth', tmp_path / 'seg.pth', 'mit-bevfusion',
                                     'bevseg', strict=True, target_manifest=shapes(target))
    assert result.report.gaps() == {} and result.report.unmapped == []
    assert result.report.src_spconv_layout == 'spconv1'
    head = result.report.module('seg_head')
    assert len(head.transferred) == 14  # classifier.{0,1,3,4,6}: 1 + 5 + 1 + 5 + 2
    converted = read_converted(tmp_path / 'seg.pth')
    model.load_state_dict(converted, strict=True)
    loaded = model.state_dict()
    assert torch.equal(loaded['seg_head.classifier.6.weight'],
                       mit['heads.map.classifier.6.weight'].float())
    key = 'pts_middle_encoder.conv_out.0.weight'
    assert torch.equal(loaded[key], torch.einsum(
        'abcio->oabci', mit['encoders.lidar.backbone.conv_out.0.weight']).float())
    # and back to the release layout, spconv 1.x, bit-identical
    back = convert_state_dict(converted, get_table('bevseg', 'mit-bevfusion'))
    grid = {f'encoders.camera.vtransform.{g}' for g in ('dx', 'bx', 'nx', 'frustum')}
    assert set(back.state_dict) == set(mit) - grid
    assert all(torch.equal(back.state_dict[k], mit[k]) for k in back.state_dict)


NSMAE_CONFIGS = REPO_ROOT / 'projects/NSMAE/configs'
PAIRS = {
    # pre-training config, seg config, layout, encoders that move
    'tiny-cl': (TINY_NSMAE, TINY_SEG, 'bevseg', ENCODERS),
    'paper-cl': (NSMAE_CONFIGS / 'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py',
                 PAPER_SEG, 'bevseg', ENCODERS),
    'tiny-c': (NSMAE_CONFIGS / 'nsmae_r18-lss_1xb1-2e_synthetic-pretrain.py',
               SEG_CONFIGS / 'bevfusionseg_cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py',
               'bevseg-camera', ENCODERS[:3]),
    'paper-c': (NSMAE_CONFIGS / 'nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py',
                SEG_CONFIGS / 'bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py',
                'bevseg-camera', ENCODERS[:3]),
}


@pytest.mark.parametrize('pair', sorted(PAIRS))
def test_nsmae_loads_strictly_into_the_seg_encoders(pair, tmp_path):
    """What the nsmae-init configs (and the transfer experiment) rely on."""
    pretrain_config, seg_config, layout, encoders = PAIRS[pair]
    nsmae = build(pretrain_config).state_dict()
    seg = build(seg_config)
    torch.save({'state_dict': nsmae, 'meta': {}}, tmp_path / 'nsmae.pth')
    result = convert_checkpoint_file(tmp_path / 'nsmae.pth', tmp_path / 'seg.pth', 'nsmae',
                                     layout, strict=True,
                                     target_manifest=shapes(seg.state_dict()))
    report = result.report
    assert report.gaps() == {}
    assert {m.name for m in report.modules if m.transferred} == set(encoders)
    assert any(k.startswith('pv_render_head.') for k in report.discarded)
    incompatible = seg.load_state_dict(read_converted(tmp_path / 'seg.pth'), strict=False)
    assert incompatible.unexpected_keys == []
    # only the decoder and the map head are left to train from scratch
    assert {k.split('.')[0] for k in incompatible.missing_keys} == {
        'pts_backbone', 'pts_neck', 'seg_head'}
    loaded = seg.state_dict()
    encoder_keys = [k for k in loaded if k.split('.')[0] in encoders]
    assert encoder_keys and all(torch.equal(loaded[k], nsmae[k]) for k in encoder_keys)


def test_bevseg_pairs():
    from render_pretrain.converters import available_pairs
    seg_pairs = {pair for pair in available_pairs() if 'bevseg' in pair[0] + pair[1]}
    assert seg_pairs == {(src, dst) for src in ('nsmae', 'nsmae-lidar-zyx')
                         for dst in ('bevseg', 'bevseg-camera', 'bevseg-lidar')} | {
        ('mit-bevfusion', 'bevseg'), ('mit-bevfusion', 'bevseg-camera'),
        ('bevseg', 'mit-bevfusion')}
    assert get_table('nsmae', 'bevseg-camera').module_names == (
        'img_backbone', 'img_neck', 'view_transform')
    assert get_table('mit-bevfusion', 'bevseg').rule('seg_head').src_prefix == 'heads.map.'


MIM4D_TINY = REPO_ROOT / ('projects/MIM4D/configs/'
                          'mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py')
BEVDET_SEG_TINY = SEG_CONFIGS / 'bevdetseg_r18-lss_1xb1-2e_synthetic-seg.py'


def test_mim4d_loads_strictly_into_the_bevdet_seg_encoder(tmp_path):
    """The mim4d-bevseg chain: MIM4D's image side -> BEVDetSeg (layout ``bevdet``).

    Every tensor of MIM4D's backbone, neck and depth net moves, unchanged,
    onto the same-named parameter of the camera segmentation model; the
    pre-training-only parts (render head, temporal predictor, masker, volume
    projection) are discarded; only the BEV encoder and the map head stay
    to train from scratch.
    """
    mim4d = build(MIM4D_TINY).state_dict()
    seg = build(BEVDET_SEG_TINY)
    torch.save({'state_dict': mim4d, 'meta': {}}, tmp_path / 'mim4d.pth')
    result = convert_checkpoint_file(tmp_path / 'mim4d.pth', tmp_path / 'seg.pth', 'mim4d',
                                     'bevdet', strict=True,
                                     target_manifest=shapes(seg.state_dict()))
    report = result.report
    assert report.gaps() == {} and report.unmapped == []
    assert {m.name for m in report.modules if m.transferred} == {
        'img_backbone', 'img_neck', 'img_view_transformer'}
    assert {k.split('.')[0] for k in report.discarded} >= {'render_head', 'temporal_predictor'}
    converted = read_converted(tmp_path / 'seg.pth')
    incompatible = seg.load_state_dict(converted, strict=False)
    assert incompatible.unexpected_keys == []
    assert {k.split('.')[0] for k in incompatible.missing_keys} == {
        'img_bev_encoder_backbone', 'img_bev_encoder_neck', 'seg_head'}
    loaded = seg.state_dict()
    moved = {k: k for k in mim4d if k.split('.')[0] in ('img_backbone', 'img_neck')}
    moved.update({k: 'img_view_transformer.depthnet.' + k[len('view_transform.depthnet.'):]
                  for k in mim4d if k.startswith('view_transform.depthnet.')})
    assert len(moved) == len(converted)
    assert sorted(moved.values()) == sorted(converted)
    for src, dst in moved.items():
        assert torch.equal(loaded[dst], mim4d[src]), (src, dst)
    # the depth net: 16 depth bins + 16 context channels from the 64-channel neck
    assert loaded['img_view_transformer.depthnet.weight'].shape == (32, 64, 1, 1)
