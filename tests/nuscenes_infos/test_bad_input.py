"""Bad input raises errors naming the file or token; missing maps are reported."""
import json
import logging
import os
import shutil

import numpy as np
import pytest

from render_pretrain.nuscenes_infos import NuScenesInfoError, create_nuscenes_infos

VERSION = 'v1.0-mini'


def _convert(root, out, **kwargs):
    return create_nuscenes_infos(root, out, version=VERSION, subsets=(), progress=False,
                                 max_lidar_sweeps=0, max_cam_sweeps=0, **kwargs)


def _key_frame_file(root, channel):
    """Relative path of one key-frame file of ``channel`` in a mini_train scene."""
    records = json.loads((root / VERSION / 'sample_data.json').read_text())
    return next(r['filename'] for r in records
                if r['is_key_frame'] and f'/{channel}/' in r['filename'])


def test_truncated_point_cloud_names_the_file(world_copy, tmp_path):
    rel = _key_frame_file(world_copy, 'LIDAR_TOP')
    path = world_copy / rel
    data = np.fromfile(os.path.realpath(path), dtype=np.uint8)
    path.unlink()
    data[:-6].tofile(path)  # not a multiple of 5 float32
    with pytest.raises(NuScenesInfoError, match='truncated') as err:
        _convert(world_copy, tmp_path / 'out', with_map=False)
    assert str(path) in str(err.value)


def test_missing_image_names_the_file(world_copy, tmp_path):
    rel = _key_frame_file(world_copy, 'CAM_BACK_LEFT')
    (world_copy / rel).unlink()
    with pytest.raises(NuScenesInfoError, match='not found') as err:
        _convert(world_copy, tmp_path / 'out', with_map=False)
    assert str(world_copy / rel) in str(err.value)


@pytest.mark.parametrize('field', ['ego_pose_token', 'calibrated_sensor_token'])
def test_broken_sample_data_token_is_named(world_copy, tmp_path, field):
    table = world_copy / VERSION / 'sample_data.json'
    records = json.loads(table.read_text())
    record = next(r for r in records if r['is_key_frame'] and '/CAM_FRONT/' in r['filename'])
    broken = 'ffffffffffffffffffffffffbroken00'
    record[field] = broken
    table.write_text(json.dumps(records))
    with pytest.raises(NuScenesInfoError) as err:
        _convert(world_copy, tmp_path / 'out', with_map=False)
    assert broken in str(err.value) and 'sample_data' in str(err.value)


def test_missing_map_expansion_is_reported(world_copy, tmp_path, caplog):
    shutil.rmtree(world_copy / 'maps' / 'expansion', ignore_errors=True)
    with caplog.at_level(logging.WARNING):
        out = _convert(world_copy, tmp_path / 'out', with_map=True, check_files=False)
    assert 'No map expansion data for location' in caplog.text
    import pickle
    with open(out['train'], 'rb') as f:
        data = pickle.load(f)
    assert all('map_seg_path' not in info for info in data['data_list'])
    assert 'map_seg' not in data['metainfo']
