"""mit-han-lab / NS-MAE release layout <-> mmdet3d BEVFusion, against the manifest.

BEVFusion is not in the mmdet3d wheel, so no module tree can be built: the
output is compared key by key and shape by shape with the stock manifest,
and value by value with the fake source.
"""
import pytest
import torch

from render_pretrain.converters import (ConversionError, convert_checkpoint_file,
                                        convert_state_dict, get_table, load_manifest)
from tests.converters.fake_checkpoints import (BEVFUSION_MANIFEST, is_grid_constant,
                                               random_tensors, read_manifest,
                                               spconv2_to_spconv1, to_mit_key)

N_SEG_HEAD = 4


@pytest.fixture(scope='module')
def bevfusion(manifests):
    return read_manifest(manifests, BEVFUSION_MANIFEST)


@pytest.fixture(scope='module')
def mit_checkpoint(bevfusion):
    """Fake mit-han-lab checkpoint: every manifest tensor (grid constants
    included, as the release stores them), sparse weights in spconv 1.x
    layout, plus a BEV map segmentation head. Half precision keeps the
    40 M-parameter file small; values are compared exactly."""
    ours = random_tensors(bevfusion, seed=1, dtype=torch.float16)
    mit = {}
    for key, value in ours.items():
        if value.dim() == 5:
            value = spconv2_to_spconv1(value)
        mit[to_mit_key(key)] = value
    for i in range(N_SEG_HEAD):
        mit[f'heads.map.classifier.{i}.weight'] = torch.randn(6, 6, 3, 3)
    return ours, mit


def test_mit_to_mmdet3d_matches_manifest(manifests, bevfusion, mit_checkpoint, tmp_path):
    ours, mit = mit_checkpoint
    src = tmp_path / 'mit.pth'
    torch.save({'state_dict': mit, 'meta': {'epoch': 20}}, src)
    dst = tmp_path / 'out' / 'mmdet3d.pth'
    modules = ['img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
               'fusion_layer', 'pts_backbone', 'pts_neck', 'bbox_head']
    result = convert_checkpoint_file(src, dst, 'mit-bevfusion', 'mmdet3d-bevfusion', modules,
                                     strict=True,
                                     target_manifest=manifests / BEVFUSION_MANIFEST)
    expected = {k: v for k, v in bevfusion.items() if not is_grid_constant(k)}
    assert len(expected) == len(bevfusion) - 4

    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    state_dict = checkpoint['state_dict']
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == expected
    for key, value in state_dict.items():
        if value.dim() == 5:
            want = torch.einsum('abcio->oabci', mit[to_mit_key(key)])
            assert torch.equal(value, want), key
            assert torch.equal(value, ours[key]), key
        else:
            assert torch.equal(value, ours[key]), key

    report = result.report
    assert report.src_spconv_layout == 'spconv1' and report.spconv_decided_by == 'shapes'
    enc = report.module('pts_middle_encoder')
    assert len(enc.permuted) == sum(1 for k, v in expected.items() if len(v) == 5) == 21
    assert report.module('view_transform').skipped == [
        f'encoders.camera.vtransform.{g}' for g in ('dx', 'bx', 'nx', 'frustum')]
    assert report.module('view_transform').missing == []
    assert len(report.not_requested) == N_SEG_HEAD
    assert report.gaps() == {}

    meta = checkpoint['meta']
    assert meta['src_layout'] == 'mit-bevfusion' and meta['dst_layout'] == 'mmdet3d-bevfusion'
    assert meta['modules'] == modules
    assert meta['spconv_layout'] == 'spconv2' and meta['src_spconv_layout'] == 'spconv1'
    assert meta['axis_order'] == 'xyz'
    assert len(meta['source_sha256']) == 64
    assert set(meta['versions']) == {'torch', 'render_pretrain'}
    assert state_dict._metadata['pts_middle_encoder.conv_out.0'] == {'version': 2}
    assert len(state_dict._metadata) == 21


def test_mit_default_modules_report_seg_head_unexpected(manifests, mit_checkpoint):
    _, mit = mit_checkpoint
    result = convert_state_dict(mit, get_table('mit-bevfusion', 'mmdet3d-bevfusion'),
                                manifest=load_manifest(manifests / BEVFUSION_MANIFEST))
    seg = result.report.module('seg_head')
    assert len(seg.unexpected) == N_SEG_HEAD and seg.transferred == []
    assert not any(k.startswith('seg_head.') for k in result.state_dict)
    assert list(result.report.gaps()) == ['seg_head']
    with pytest.raises(ConversionError, match='seg_head: 4 unexpected'):
        convert_state_dict(mit, get_table('mit-bevfusion', 'mmdet3d-bevfusion'),
                           manifest=load_manifest(manifests / BEVFUSION_MANIFEST), strict=True)


def test_round_trip_back_to_mit(mit_checkpoint):
    _, mit = mit_checkpoint
    forward = convert_state_dict(mit, get_table('mit-bevfusion', 'mmdet3d-bevfusion'))
    back = convert_state_dict(forward.state_dict, get_table('mmdet3d-bevfusion', 'mit-bevfusion'))
    assert back.report.dst_spconv_layout == 'spconv1'
    non_grid = {k: v for k, v in mit.items() if k.rsplit('.', 1)[-1] not in
                ('dx', 'bx', 'nx', 'frustum')}
    assert list(back.state_dict) == list(non_grid)
    assert all(torch.equal(back.state_dict[k], v) for k, v in non_grid.items())


def test_nsmae_camera_only(manifests, bevfusion):
    ours = random_tensors(bevfusion, seed=2)
    ours['pv_render_head.0.weight'] = torch.randn(4, 80, 1, 1)
    ours['img_mask_token'] = torch.zeros(1, 3, 8, 8)
    result = convert_state_dict(ours, get_table('nsmae', 'mmdet3d-bevfusion-camera'),
                                manifest=load_manifest(manifests / BEVFUSION_MANIFEST),
                                strict=True)
    camera = {k for k in bevfusion if k.split('.')[0] in ('img_backbone', 'img_neck',
                                                          'view_transform')}
    assert set(result.state_dict) == {k for k in camera if not is_grid_constant(k)}
    report = result.report
    assert [m.name for m in report.modules] == ['img_backbone', 'img_neck', 'view_transform']
    assert [len(m.transferred) for m in report.modules] == [187, 24, 55]
    heads = [k for k in bevfusion if k.startswith('bbox_head.')]
    n_other = sum(1 for k in bevfusion if k not in camera) - len(heads) + 2
    assert len(report.discarded) == n_other
    assert report.unmapped == heads  # no NS-MAE table moves a detection head
    assert report.src_spconv_layout is None
