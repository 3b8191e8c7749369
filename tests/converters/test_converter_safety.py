"""The converter never destroys its input, refuses a wrong layout that maps
almost nothing, names broken or crafted source files, and writes outputs with
the umask's mode."""
import os
from collections import OrderedDict

import pytest
import torch

from render_pretrain.paths import REPO_ROOT
from tests.converters.test_convert_checkpoint_cli import convert_checkpoint

TINY_NSMAE_CL = 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'
CAMERA = ['--src-layout', 'uvtr-mim4d', '--dst-layout', 'mim4d']


def _uvtr_state():
    return OrderedDict([('img_backbone.stem.weight', torch.arange(8.0).view(2, 4)),
                        ('img_neck.conv.weight', torch.ones(2, 2)),
                        ('depth_net.weight', torch.full((3, 2), 2.0))])


def _write_source(path):
    torch.save({'state_dict': _uvtr_state()}, path)
    return path.read_bytes()


def test_output_is_input_refused(tmp_path, capsys, monkeypatch):
    """Same path, a relative spelling, a symlink and a hard link: refused,
    even with --overwrite, and the source bytes are untouched."""
    src = tmp_path / 'src.pth'
    original = _write_source(src)
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'link.pth').symlink_to(src)
    os.link(src, tmp_path / 'hard.pth')
    monkeypatch.chdir(tmp_path / 'sub')
    for dst in (str(src), '../src.pth', str(tmp_path / 'link.pth'), '../hard.pth'):
        for extra in ([], ['--overwrite']):
            assert convert_checkpoint.main([str(src), dst, *CAMERA, *extra]) == 1
            assert 'is the input checkpoint' in capsys.readouterr().err
            assert src.read_bytes() == original


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    _write_source(src)
    dst.write_bytes(b'precious')
    assert convert_checkpoint.main([str(src), str(dst), *CAMERA]) == 1
    assert f'output {dst} exists; pass --overwrite' in capsys.readouterr().err
    assert dst.read_bytes() == b'precious'
    assert convert_checkpoint.main([str(src), str(dst), *CAMERA, '--overwrite']) == 0
    out = torch.load(dst, weights_only=True)['state_dict']
    assert torch.equal(out['view_transform.depthnet.weight'], torch.full((3, 2), 2.0))


def _tiny_nsmae_camera_lidar_state():
    from mmdet3d.registry import MODELS

    from tools.utils import load_config, prepare_registries
    cfg = prepare_registries(load_config(str(REPO_ROOT / TINY_NSMAE_CL)))
    return MODELS.build(cfg.model).state_dict()


def test_wrong_layout_mapping_little_fails(tmp_path, capsys):
    """An NS-MAE camera + LiDAR checkpoint declared as MIM4D: its LiDAR
    encoder and render heads (136 of 336 tensors) are unknown to the table."""
    state = _tiny_nsmae_camera_lidar_state()
    src, dst = tmp_path / 'nsmae.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': state}, src)
    args = [str(src), str(dst), '--src-layout', 'mim4d', '--dst-layout',
            'mmdet3d-bevfusion-camera']
    assert convert_checkpoint.main(args) == 1
    err = capsys.readouterr().err
    assert '136 of 336 tensors (40%, more than 25%) are not known to the mim4d' in err
    assert 'pts_middle_encoder' in err and not dst.exists()
    assert convert_checkpoint.main(args + ['--allow-unmapped']) == 0 and dst.exists()
    # The right layout maps every tensor (transferred or declared discarded).
    right = tmp_path / 'right.pth'
    assert convert_checkpoint.main([str(src), str(right), '--src-layout', 'nsmae',
                                    '--dst-layout', 'mmdet3d-bevfusion-camera']) == 0
    assert torch.load(right, weights_only=True)['meta']['report']['unmapped'] == 0


@pytest.mark.parametrize('content', ['empty', 'text', 'truncated'])
def test_broken_source_named(tmp_path, capsys, content):
    src, dst = tmp_path / 'broken.pth', tmp_path / 'dst.pth'
    data = _write_source(src)
    src.write_bytes({'empty': b'', 'text': b'{"not": "a checkpoint"}\n',
                     'truncated': data[:len(data) // 2]}[content])
    assert convert_checkpoint.main([str(src), str(dst), *CAMERA]) == 1
    err = capsys.readouterr().err
    assert f'{src} is not a readable checkpoint' in err and not dst.exists()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_crafted_source_refused_without_running(tmp_path, capsys):
    src, dst, marker = tmp_path / 'crafted.pth', tmp_path / 'dst.pth', tmp_path / 'marker'
    torch.save({'state_dict': _uvtr_state(), 'meta': {'x': _RunsCode(marker)}}, src)
    assert convert_checkpoint.main([str(src), str(dst), *CAMERA]) == 1
    err = capsys.readouterr().err
    assert f'{src}: refused to load' in err and 'posix.system' in err
    assert not marker.exists() and not dst.exists()


def test_runner_checkpoint_source_converts(tmp_path):
    """A source with the Runner's non-tensor metadata (HistoryBuffer, numpy)
    still converts under the weights-only reader."""
    from mmengine.logging import MessageHub
    import numpy as np
    hub = MessageHub.get_instance('converter-safety')
    hub.update_scalar('train/loss', 1.5)
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'state_dict': _uvtr_state(), 'message_hub': hub.state_dict(),
                'meta': {'seed': np.int64(3), 'hist': np.arange(3.0)}}, src)
    assert convert_checkpoint.main([str(src), str(dst), *CAMERA]) == 0


def test_output_mode_follows_umask(tmp_path):
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    _write_source(src)
    old = os.umask(0o022)
    try:
        assert convert_checkpoint.main([str(src), str(dst), *CAMERA]) == 0
    finally:
        os.umask(old)
    assert dst.stat().st_mode & 0o777 == 0o644
