"""The CLI: errors leave no output file; the report counts are right."""
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from render_pretrain.paths import REPO_ROOT
from tests.converters.fake_checkpoints import (BEVDET_MANIFEST, BEVFUSION_MANIFEST,
                                               random_tensors, read_manifest)

sys.path.insert(0, str(REPO_ROOT / 'tools' / 'model_converters'))
import convert_checkpoint  # noqa: E402

SCRIPT = REPO_ROOT / 'tools' / 'model_converters' / 'convert_checkpoint.py'


def _small_nsmae(manifests):
    """Camera modules of the BEVFusion manifest minus the Swin backbone,
    plus a render head: small but complete for img_neck / view_transform."""
    bevfusion = read_manifest(manifests, BEVFUSION_MANIFEST)
    shapes = {k: v for k, v in bevfusion.items() if k.startswith(('img_neck.', 'view_transform.'))}
    state = random_tensors(shapes, seed=7)
    state['pv_render_head.conv.weight'] = torch.randn(4, 80, 1, 1)
    return state


def _run(tmp_path, state, *args):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'model': state}, src)
    rc = convert_checkpoint.main([str(src), str(dst), *args])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ('src.pth', 'dst.pth')]
    assert leftovers == []  # no temporary file left behind
    return rc, dst


def test_report_counts(manifests, tmp_path, capsys):
    state = _small_nsmae(manifests)
    state['view_transform.depthnet.6.weight'] = torch.randn(198, 256, 3, 3)  # wrong kernel
    state['view_transform.extra.weight'] = torch.randn(3)
    del state['img_neck.fpn_convs.1.bn.running_var']
    rc, dst = _run(tmp_path, state, '--src-layout', 'nsmae', '--dst-layout',
                   'mmdet3d-bevfusion-camera', '--modules', 'img_neck,view_transform',
                   '--target-manifest', str(manifests / BEVFUSION_MANIFEST))
    assert rc == 0 and dst.is_file()
    captured = capsys.readouterr()
    out = captured.out
    # one progress bar over the tensors converted: 23 + 60 sources, 4 grid constants skipped
    assert 'convert: 100%' in captured.err and '79/79 tensor' in captured.err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith(('img_neck ', 'view_transform '))}
    # source transferred permuted grid-skipped missing unexpected shape-mismatch
    assert rows['img_neck'] == ['23', '23', '0', '0', '1', '0', '0']
    assert rows['view_transform'] == ['60', '54', '0', '4', '0', '1', '1']
    assert 'discarded (pre-training only / other modality): 1 keys' in out
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['report']['modules']['view_transform'] == dict(
        source=60, transferred=54, permuted=0, skipped_grid_constants=4, missing=0,
        unexpected=1, shape_mismatches=1)
    assert meta['modules'] == ['img_neck', 'view_transform']


def test_wrong_shapes_strict_fails_without_output(manifests, tmp_path, capsys):
    state = _small_nsmae(manifests)
    state['view_transform.depthnet.6.weight'] = torch.randn(198, 256, 3, 3)
    rc, dst = _run(tmp_path, state, '--src-layout', 'nsmae', '--dst-layout',
                   'mmdet3d-bevfusion-camera', '--modules', 'img_neck,view_transform',
                   '--strict', '--target-manifest', str(manifests / BEVFUSION_MANIFEST))
    assert rc == 1 and not dst.exists()
    err = capsys.readouterr().err
    assert 'view_transform: 1 shape mismatches (e.g. view_transform.depthnet.6.weight: ' \
           'converted [198, 256, 3, 3] vs target [198, 256, 1, 1])' in err
    assert 'no output written' in err


def test_sparse_weight_fitting_no_layout_fails(tmp_path, capsys):
    state = OrderedDict([('pts_middle_encoder.conv_input.0.weight', torch.randn(16, 3, 3, 3, 5)),
                         ('pts_middle_encoder.conv_input.1.weight', torch.randn(32))])
    rc, dst = _run(tmp_path, state, '--src-layout', 'nsmae', '--dst-layout',
                   'mmdet3d-centerpoint')
    assert rc == 1 and not dst.exists()
    assert 'fits neither' in capsys.readouterr().err


def test_ambiguous_sparse_layout_needs_flag(tmp_path, capsys):
    state = OrderedDict([('encoders.lidar.backbone.conv.0.weight', torch.randn(16, 3, 3, 3, 16)),
                         ('encoders.lidar.backbone.conv.1.weight', torch.randn(16))])
    args = ['--src-layout', 'mit-bevfusion', '--dst-layout', 'mmdet3d-centerpoint']
    rc, dst = _run(tmp_path, state, *args)
    assert rc == 1 and not dst.exists()
    assert 'cannot tell the sparse-conv weight layout' in capsys.readouterr().err
    rc, dst = _run(tmp_path, state, *args, '--src-spconv-layout', 'spconv2')
    assert rc == 0
    out = torch.load(dst, weights_only=True)
    assert out['meta']['spconv_layout_decided_by'] == '--src-spconv-layout'
    assert torch.equal(out['state_dict']['pts_middle_encoder.conv.0.weight'],
                       torch.einsum('oxyzi->ozyxi', state['encoders.lidar.backbone.conv.0.weight']))


@pytest.mark.parametrize('args, message', [
    (['--src-layout', 'nsmea', '--dst-layout', 'mmdet3d-bevfusion'], "unknown layout 'nsmea'"),
    (['--src-layout', 'nsmae', '--dst-layout', 'mim4d'], 'no table for nsmae -> mim4d'),
    (['--src-layout', 'nsmae', '--dst-layout', 'mmdet3d-bevfusion-camera', '--modules',
      'img_backbone'], "no tensor for module(s) ['img_backbone']"),
    (['--src-layout', 'nsmae', '--dst-layout', 'mmdet3d-centerpoint'],
     "no tensor for module(s) ['pts_middle_encoder']"),
    (['--src-layout', 'nsmae', '--dst-layout', 'mmdet3d-bevfusion-camera', '--modules',
      'img_nek'], "unknown module(s) ['img_nek']"),
    (['--src-layout', 'nsmae', '--dst-layout', 'mmdet3d-bevfusion-camera', '--strict'],
     'strict mode needs a target manifest'),
])
def test_errors_write_nothing(manifests, tmp_path, capsys, args, message):
    rc, dst = _run(tmp_path, _small_nsmae(manifests), *args)
    assert rc == 1 and not dst.exists()
    assert message in capsys.readouterr().err


def test_nsmae_to_bevdet_reports_mismatches(manifests, tmp_path, capsys):
    """ResNet-50 backbone matches; the BEVFusion-style neck and depth net do
    not fit BEVDet's: reported, not fatal unless --strict."""
    bevdet = read_manifest(manifests, BEVDET_MANIFEST)
    state = random_tensors({k: v for k, v in bevdet.items() if k.startswith('img_backbone.')})
    state.update(_small_nsmae(manifests))
    args = ['--src-layout', 'nsmae', '--dst-layout', 'bevdet',
            '--target-manifest', str(manifests / BEVDET_MANIFEST)]
    rc, dst = _run(tmp_path, state, *args)
    assert rc == 0
    out = torch.load(dst, weights_only=True)['state_dict']
    backbone = [k for k in bevdet if k.startswith('img_backbone.')]
    assert list(out) == backbone
    assert torch.equal(out['img_backbone.conv1.weight'], state['img_backbone.conv1.weight'])
    report = capsys.readouterr().out
    assert 'img_view_transformer: 2 shape mismatches' in report
    assert 'img_neck: 3 missing' in report and 'img_neck: 21 unexpected' in report
    assert 'img_neck: nothing transferred' in report
    assert "grid constants skipped: 4 keys, e.g. ['view_transform.dx'," in report
    rc, dst = _run(tmp_path, state, *args, '--strict')
    assert rc == 1


def test_uvtr_to_mim4d(tmp_path):
    state = OrderedDict([
        ('img_backbone.stem.weight', torch.randn(8, 3, 4, 4)),
        ('img_neck.lateral_convs.0.conv.weight', torch.randn(8, 8, 1, 1)),
        ('input_proj.weight', torch.randn(8, 8, 1, 1)),
        ('depth_net.weight', torch.randn(118, 8, 1, 1)),
        ('render_conv.0.weight', torch.randn(4, 8, 3, 3, 3)),
        ('history_decoder.proj.weight', torch.randn(4, 4)),
        ('pts_bbox_head.sdf.weight', torch.randn(4, 4)),
    ])
    rc, dst = _run(tmp_path, state, '--src-layout', 'uvtr-mim4d', '--dst-layout', 'mim4d')
    assert rc == 0
    out = torch.load(dst, weights_only=True)
    assert list(out['state_dict']) == ['img_backbone.stem.weight',
                                       'img_neck.lateral_convs.0.conv.weight',
                                       'view_transform.input_proj.weight',
                                       'view_transform.depthnet.weight']
    assert torch.equal(out['state_dict']['view_transform.depthnet.weight'],
                       state['depth_net.weight'])
    assert out['meta']['report']['discarded'] == 3


@pytest.mark.subprocess
def test_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), '--list-layouts'], capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 0
    assert 'nsmae -> mmdet3d-centerpoint' in proc.stdout
    assert 'mit-bevfusion -> mmdet3d-bevfusion' in proc.stdout


TINY_NSMAE_LIDAR = 'projects/NSMAE/configs/nsmae_second_1xb1-2e_synthetic-pretrain.py'
TINY_CENTERPOINT = 'configs/centerpoint/centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py'  # noqa: E501


def _tiny_nsmae_lidar_state(**encoder_overrides):
    """State dict of the tiny NS-MAE LiDAR model built from its config."""
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    from mmengine.config import Config
    import projects.NSMAE.nsmae  # noqa: F401
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(REPO_ROOT / TINY_NSMAE_LIDAR))
    cfg.model.pts_middle_encoder.update(encoder_overrides)
    return MODELS.build(cfg.model).state_dict()


def test_target_config_verifies_against_the_built_model(tmp_path, capsys):
    rc, dst = _run(tmp_path, _tiny_nsmae_lidar_state(), '--src-layout', 'nsmae',
                   '--dst-layout', 'mmdet3d-centerpoint', '--modules', 'pts_middle_encoder',
                   '--strict', '--target-config', str(REPO_ROOT / TINY_CENTERPOINT))
    assert rc == 0 and dst.exists()
    out = capsys.readouterr().out
    assert 'pts_middle_encoder' in out
    converted = torch.load(dst, weights_only=True)
    assert converted['meta']['dst_layout'] == 'mmdet3d-centerpoint'
    conv_out = converted['state_dict']['pts_middle_encoder.conv_out.0.weight']
    assert conv_out.shape == (128, 3, 1, 1, 128)


def test_target_config_rejects_a_different_encoder_width(tmp_path, capsys):
    narrow = _tiny_nsmae_lidar_state(
        base_channels=8, output_channels=32,
        encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)))
    rc, dst = _run(tmp_path, narrow, '--src-layout', 'nsmae', '--dst-layout',
                   'mmdet3d-centerpoint', '--modules', 'pts_middle_encoder', '--strict',
                   '--target-config', str(REPO_ROOT / TINY_CENTERPOINT))
    assert rc == 1 and not dst.exists()
    assert 'pts_middle_encoder.conv_input.0.weight' in capsys.readouterr().err
