"""Engine details: tables, metadata-declared layouts, Z,Y,X -> X,Y,Z, MIM4D."""
from collections import OrderedDict

import pytest
import torch

from render_pretrain.converters import (TABLES, ConversionError, convert_state_dict, get_table,
                                        load_manifest)
from render_pretrain.converters.metadata import mark_sparse_modules
from tests.converters.fake_checkpoints import (BEVFUSION_MANIFEST, CENTERPOINT_MANIFEST,
                                               random_tensors, read_manifest)


def test_tables_are_consistent():
    assert len(TABLES) == 26  # 17 + 9 BEV segmentation pairs (test_bevseg_conversion.py)
    for (src, dst), table in TABLES.items():
        assert (table.src_layout, table.dst_layout) == (src, dst)
        assert table.modules, (src, dst)
        for rule in table.modules:
            if rule.grid_constants:
                assert rule.grid_constants == ('dx', 'bx', 'nx', 'frustum')
        sparse = [rule for rule in table.modules if rule.sparse]
        assert all(rule.name == 'pts_middle_encoder' for rule in sparse)
    # Grid constants of view transforms that do not move are declared too.
    for src, dst, prefix in (('nsmae', 'mmdet3d-bevfusion-lidar', 'view_transform.'),
                             ('nsmae', 'mmdet3d-centerpoint', 'view_transform.'),
                             ('nsmae', 'bevdet', 'view_transform.'),
                             ('mit-bevfusion', 'mmdet3d-centerpoint',
                              'encoders.camera.vtransform.')):
        assert get_table(src, dst).src_grid_constants == tuple(
            prefix + g for g in ('dx', 'bx', 'nx', 'frustum'))


def test_zyx_encoder_to_bevfusion_lidar(manifests):
    """nsmae-lidar-zyx: a CenterPoint-shaped encoder lands on BEVFusion's."""
    centerpoint = read_manifest(manifests, CENTERPOINT_MANIFEST)
    source = random_tensors({k: v for k, v in centerpoint.items()
                             if k.startswith('pts_middle_encoder.')}, seed=11)
    result = convert_state_dict(source, get_table('nsmae-lidar-zyx', 'mmdet3d-bevfusion-lidar'),
                                ['pts_middle_encoder'],
                                manifest=load_manifest(manifests / BEVFUSION_MANIFEST),
                                strict=True)
    bevfusion = read_manifest(manifests, BEVFUSION_MANIFEST)
    assert {k: tuple(v.shape) for k, v in result.state_dict.items()} == {
        k: v for k, v in bevfusion.items() if k.startswith('pts_middle_encoder.')}
    key = 'pts_middle_encoder.conv_out.0.weight'
    assert torch.equal(result.state_dict[key], torch.einsum('ozyxi->oxyzi', source[key]))
    assert result.report.spconv_decided_by == 'shapes'


def test_meta_declares_ambiguous_layout():
    source = OrderedDict([('encoders.lidar.backbone.conv.0.weight', torch.randn(16, 3, 3, 3, 16)),
                          ('encoders.lidar.backbone.conv.1.weight', torch.randn(16))])
    table = get_table('mit-bevfusion', 'mmdet3d-bevfusion-lidar')
    with pytest.raises(ConversionError, match='cannot tell'):
        convert_state_dict(source, table)
    result = convert_state_dict(source, table, src_meta={'spconv_layout': 'spconv1'},
                                source_name='a.pth')
    assert result.report.spconv_decided_by == 'a.pth meta.spconv_layout'
    weight = source['encoders.lidar.backbone.conv.0.weight']
    assert torch.equal(result.state_dict['pts_middle_encoder.conv.0.weight'],
                       torch.einsum('abcio->oabci', weight))
    # The flag wins over the metadata.
    flagged = convert_state_dict(source, table, src_meta={'spconv_layout': 'spconv1'},
                                 src_spconv_layout='spconv2')
    assert torch.equal(flagged.state_dict['pts_middle_encoder.conv.0.weight'],
                       source['encoders.lidar.backbone.conv.0.weight'])


def test_mim4d_to_bevfusion_camera_and_bevdet():
    source = OrderedDict([
        ('img_backbone.conv1.weight', torch.randn(4, 3, 3, 3)),
        ('img_neck.conv.weight', torch.randn(4, 4, 1, 1)),
        ('view_transform.input_proj.weight', torch.randn(4, 4, 1, 1)),
        ('view_transform.depthnet.weight', torch.randn(10, 4, 1, 1)),
        ('temporal_predictor.decoder.weight', torch.randn(4, 4)),
        ('render_head.sdf.weight', torch.randn(4, 4)),
    ])
    camera = convert_state_dict(source, get_table('mim4d', 'mmdet3d-bevfusion-camera'))
    assert list(camera.state_dict) == ['img_backbone.conv1.weight', 'img_neck.conv.weight',
                                       'view_transform.depthnet.6.weight']
    assert sorted(camera.report.discarded) == ['render_head.sdf.weight',
                                               'temporal_predictor.decoder.weight',
                                               'view_transform.input_proj.weight']
    bevdet = convert_state_dict(source, get_table('mim4d', 'bevdet'))
    assert torch.equal(bevdet.state_dict['img_view_transformer.depthnet.weight'],
                       source['view_transform.depthnet.weight'])


def test_neighbour_hints_decide_layout_without_manifest():
    """Cubic 16 -> 16 convs: C_out alone fits both layouts; the norm layer
    before the second conv gives its C_in and decides."""
    first = ('encoders.lidar.backbone.conv_input.0.weight', torch.randn(16, 3, 3, 3, 16))
    second = ('encoders.lidar.backbone.conv1.weight', torch.randn(16, 3, 3, 3, 16))
    table = get_table('mit-bevfusion', 'mmdet3d-bevfusion-lidar')
    source = OrderedDict([first, ('encoders.lidar.backbone.conv_input.1.weight', torch.ones(16)),
                          second, ('encoders.lidar.backbone.bn1.weight', torch.ones(16))])
    result = convert_state_dict(source, table)
    assert result.report.src_spconv_layout == 'spconv2'
    assert result.report.spconv_decided_by == 'shapes'
    assert torch.equal(result.state_dict['pts_middle_encoder.conv1.weight'], second[1])
    without_first_norm = OrderedDict([first, second,
                                      ('encoders.lidar.backbone.bn1.weight', torch.ones(16))])
    with pytest.raises(ConversionError, match='cannot tell'):
        convert_state_dict(without_first_norm, table)


def test_metadata_marks_only_spconv2():
    state = OrderedDict(a=torch.zeros(1))
    assert mark_sparse_modules(state, ['enc.conv.weight'], 'spconv2')._metadata == {
        'enc.conv': {'version': 2}}
    assert mark_sparse_modules(state, ['enc.conv.weight'], 'spconv1')._metadata == {}
