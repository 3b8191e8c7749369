"""create_data validates key frames: NaN/Inf LiDAR points, images that do not
decode and missing cameras fail naming the file or sample, or, with
``skip_invalid``, are left out and counted; a root without maps/ converts
with ``--no-map``."""
import json
import pickle
import re
import shutil
import sys

import numpy as np
import pytest

from render_pretrain.nuscenes_infos import NuScenesInfoError, create_nuscenes_infos
from render_pretrain.paths import REPO_ROOT
from tests.nuscenes_infos.test_bad_input import VERSION, _convert, _key_frame_file

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import create_data  # noqa: E402


def _replace(path, data: bytes):
    path.unlink()  # a symlink into the shared world: never write through it
    path.write_bytes(data)


def _sample_of(root, rel):
    records = json.loads((root / VERSION / 'sample_data.json').read_text())
    return next(r['sample_token'] for r in records if r['filename'] == rel)


def nan_lidar_points(root):
    rel = _key_frame_file(root, 'LIDAR_TOP')
    points = np.fromfile(root / rel, dtype=np.float32).reshape(-1, 5)
    points[[3, 10], 0] = np.nan
    points[7, 2] = np.inf
    _replace(root / rel, points.tobytes())
    return rel, 'has 3 of'


def garbage_image(root):
    rel = _key_frame_file(root, 'CAM_BACK_LEFT')
    _replace(root / rel, b'this is not a JPEG' * 50)
    return rel, 'does not decode'


def truncated_image(root):
    rel = _key_frame_file(root, 'CAM_FRONT')
    data = (root / rel).read_bytes()
    _replace(root / rel, data[:len(data) // 2])
    return rel, 'does not decode as an image'


def missing_camera(root):
    rel = _key_frame_file(root, 'CAM_BACK')
    table = root / VERSION / 'sample_data.json'
    records = json.loads(table.read_text())
    for record in records:
        if record['filename'] == rel:
            record['is_key_frame'] = False  # the sample no longer lists CAM_BACK
    table.write_text(json.dumps(records))
    return rel, r'has no CAM_BACK sample_data \(5 of the 6'


DAMAGES = {'nan-lidar-points': (nan_lidar_points, 'non-finite LiDAR points'),
           'garbage-image': (garbage_image, 'image does not decode'),
           'truncated-image': (truncated_image, 'image does not decode'),
           'missing-camera': (missing_camera, 'missing camera')}


@pytest.mark.parametrize('damage', list(DAMAGES))
def test_invalid_key_frame_fails_or_is_skipped_and_counted(world_copy, tmp_path, damage):
    make, reason = DAMAGES[damage]
    rel, message = make(world_copy)
    with pytest.raises(NuScenesInfoError, match='skip-invalid-samples') as err:
        _convert(world_copy, tmp_path / 'out', with_map=False)
    assert re.search(message, str(err.value))
    named = _sample_of(world_copy, rel) if damage == 'missing-camera' else str(world_copy / rel)
    assert named in str(err.value)
    out = _convert(world_copy, tmp_path / 'out', with_map=False, skip_invalid=True)
    assert out['skipped'] == {reason: 1}
    infos = {split: pickle.loads(out[split].read_bytes()) for split in ('train', 'val')}
    tokens = [i['token'] for split in infos.values() for i in split['data_list']]
    assert _sample_of(world_copy, rel) not in tokens and len(tokens) == 11  # 12 - 1
    skipped = infos['train']['metainfo']['skipped_samples']
    assert list(skipped) == [_sample_of(world_copy, rel)]


def test_nan_points_never_reach_the_gt_database(world_copy, tmp_path):
    nan_lidar_points(world_copy)
    out = tmp_path / 'cli'
    args = ['nuscenes', '--root-path', str(world_copy), '--out-dir', str(out), '--version',
            VERSION, '--subsets', '', '--no-map', '--max-sweeps', '0', '--max-cam-sweeps', '0']
    with pytest.raises(SystemExit):
        create_data.main(args)
    assert not (out / 'nuscenes_dbinfos_train.pkl').exists()
    create_data.main(args + ['--skip-invalid-samples'])
    for path in (out / 'nuscenes_gt_database').glob('*.bin'):
        assert np.isfinite(np.fromfile(path, dtype=np.float32)).all(), path


def test_root_without_maps_converts_with_no_map(world_copy, tmp_path):
    shutil.rmtree(world_copy / 'maps')
    with pytest.raises(NuScenesInfoError, match='pass --no-map') as err:
        _convert(world_copy, tmp_path / 'out')
    assert str(world_copy / 'maps') in str(err.value)
    out = _convert(world_copy, tmp_path / 'out', with_map=False)
    assert len(pickle.loads(out['train'].read_bytes())['data_list']) == 8


def test_intact_world_is_unchanged(world_copy, tmp_path):
    out = create_nuscenes_infos(world_copy, tmp_path / 'out', version=VERSION, subsets=(),
                                progress=False, max_lidar_sweeps=0, max_cam_sweeps=0,
                                with_map=False)
    assert out['skipped'] == {}
    assert 'skipped_samples' not in pickle.loads(out['train'].read_bytes())['metainfo']
