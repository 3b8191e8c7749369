"""Stage-2 init of C+L subset runs: stage-1 LiDAR checkpoint + pre-trained camera modules."""
import subprocess
import sys

import pytest
import torch

from render_pretrain.converters import ConversionError
from render_pretrain.converters.stage_merge import merge_stage_checkpoints
from render_pretrain.paths import REPO_ROOT


def _save(path, state):
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


@pytest.fixture
def checkpoints(tmp_path):
    lidar = {'pts_middle_encoder.conv_input.0.weight': torch.full((2, 2), 1.0),
             'pts_backbone.blocks.0.0.weight': torch.full((3,), 1.0),
             'bbox_head.heatmap_head.0.weight': torch.full((1,), 1.0)}
    camera = {'img_backbone.patch_embed.weight': torch.full((4,), 2.0),
              'img_neck.lateral_convs.0.weight': torch.full((5,), 2.0),
              'view_transform.depthnet.weight': torch.full((6,), 2.0),
              'pts_middle_encoder.conv_input.0.weight': torch.full((2, 2), 2.0),
              'fusion_layer.0.weight': torch.full((7,), 2.0)}
    return _save(tmp_path / 'lidar.pth', lidar), _save(tmp_path / 'camera.pth', camera), tmp_path


def test_merge_takes_lidar_stage_whole_and_only_camera_modules(checkpoints):
    lidar, camera, tmp = checkpoints
    counts = merge_stage_checkpoints(lidar, camera, tmp / 'stage2.pth')
    assert counts == {'lidar_stage': 3, 'img_backbone': 1, 'img_neck': 1, 'view_transform': 1}
    merged = torch.load(tmp / 'stage2.pth', weights_only=True)
    sd = merged['state_dict']
    assert set(sd) == {'pts_middle_encoder.conv_input.0.weight', 'pts_backbone.blocks.0.0.weight',
                       'bbox_head.heatmap_head.0.weight', 'img_backbone.patch_embed.weight',
                       'img_neck.lateral_convs.0.weight', 'view_transform.depthnet.weight'}
    # the LiDAR encoder is the subset-trained stage 1 (1.0), never the pre-trained one (2.0)
    assert torch.equal(sd['pts_middle_encoder.conv_input.0.weight'], torch.ones(2, 2))
    assert torch.equal(sd['img_backbone.patch_embed.weight'], torch.full((4,), 2.0))
    assert merged['meta']['stage_merge']['modules'] == ['img_backbone', 'img_neck',
                                                        'view_transform']


def test_merge_refuses_a_stage_one_with_camera_keys_or_a_source_without(checkpoints):
    lidar, camera, tmp = checkpoints
    with pytest.raises(ConversionError, match='already holds img_backbone'):
        merge_stage_checkpoints(camera, camera, tmp / 'x.pth')
    with pytest.raises(ConversionError, match='no img_backbone'):
        merge_stage_checkpoints(lidar, lidar, tmp / 'x.pth')
    assert not (tmp / 'x.pth').exists()


@pytest.mark.subprocess
def test_cli(checkpoints):
    lidar, camera, tmp = checkpoints
    result = subprocess.run([sys.executable, str(REPO_ROOT / 'tools/model_converters/'
                                                 'merge_stage_checkpoints.py'),
                             str(lidar), str(camera), str(tmp / 'cli.pth')],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp / 'cli.pth').is_file()
