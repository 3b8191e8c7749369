"""NS-MAE (X,Y,Z sparse encoder) -> mmdet3d CenterPoint (Z,Y,X), verified
against the manifest and by loading into CenterPoint built from mmdet3d's
own packaged config."""
import pytest
import torch

from render_pretrain.converters import convert_checkpoint_file
from tests.converters.fake_checkpoints import (BEVFUSION_MANIFEST, CENTERPOINT_MANIFEST,
                                               random_tensors, read_manifest)

CONFIG = 'mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
LIDAR = ('pts_middle_encoder.', 'pts_backbone.', 'pts_neck.')


@pytest.fixture(scope='module')
def converted(manifests, tmp_path_factory):
    """Fake NS-MAE checkpoint (sparse encoder, BEV backbone/neck and a few
    camera / render-head tensors) converted to CenterPoint."""
    bevfusion = read_manifest(manifests, BEVFUSION_MANIFEST)
    shapes = {k: v for k, v in bevfusion.items() if k.startswith(LIDAR + ('img_neck.',))}
    source = random_tensors(shapes, seed=5)
    source['bev_render_head.conv.weight'] = torch.randn(41, 512, 3, 3)
    source['pv_render_head.conv.weight'] = torch.randn(4, 80, 1, 1)
    tmp = tmp_path_factory.mktemp('centerpoint')
    torch.save({'state_dict': source}, tmp / 'nsmae.pth')
    result = convert_checkpoint_file(
        tmp / 'nsmae.pth', tmp / 'centerpoint.pth', 'nsmae', 'mmdet3d-centerpoint', strict=True,
        target_manifest=manifests / CENTERPOINT_MANIFEST)
    return source, result, tmp / 'centerpoint.pth'


def test_keys_shapes_and_kernel_permutation(manifests, converted):
    source, result, path = converted
    centerpoint = read_manifest(manifests, CENTERPOINT_MANIFEST)
    state_dict = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    expected = {k: v for k, v in centerpoint.items() if k.startswith(LIDAR)}
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == expected
    assert state_dict['pts_middle_encoder.conv_out.0.weight'].shape == (128, 3, 1, 1, 128)
    for key, value in state_dict.items():
        want = source[key]
        if value.dim() == 5:
            want = torch.einsum('oxyzi->ozyxi', want)
        assert torch.equal(value, want), key
    report = result.report
    assert (report.src_axis_order, report.dst_axis_order) == ('xyz', 'zyx')
    assert len(report.module('pts_middle_encoder').permuted) == 21
    assert report.module('pts_voxel_encoder').source_keys == 0
    assert len(report.discarded) == 24 + 2  # img_neck + two render heads


def test_stock_centerpoint_loads_converted_encoder(converted, tmp_path):
    pytest.importorskip('mmdet3d')
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules()
    (tmp_path / 'centerpoint.py').write_text(f'_base_ = [{CONFIG!r}]\n')
    cfg = Config.fromfile(tmp_path / 'centerpoint.py')
    model = MODELS.build(cfg.model)
    _, _, path = converted
    state_dict = torch.load(path, map_location='cpu', weights_only=True)['state_dict']

    # mmengine's loader (what `load_from` uses).
    load_checkpoint(model, str(path), map_location='cpu', strict=False)
    loaded = model.state_dict()
    # mmdet3d's spconv hook would permute the weights again without the
    # version-2 metadata; the values must arrive unchanged.
    for key, value in state_dict.items():
        assert torch.equal(loaded[key], value), key

    # Plain torch loading: no missing / unexpected key in the moved modules.
    with torch.no_grad():
        for param in model.pts_middle_encoder.parameters():
            param.zero_()
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    assert unexpected == []
    assert [k for k in missing if k.startswith(LIDAR)] == []
    assert missing and all(k.startswith('pts_bbox_head.') for k in missing)
    weight = model.pts_middle_encoder.conv_out[0].weight
    assert torch.equal(weight, state_dict['pts_middle_encoder.conv_out.0.weight'])
