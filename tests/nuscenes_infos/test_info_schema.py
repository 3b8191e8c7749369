"""Our info files have the schema of mmdet3d 1.4.0's converter.

The reference is the real info file in the shared folder, written by
mmdet3d's own ``create_data.py`` (``nuscenes_converter`` +
``update_infos_to_v2``): same keys, same value types, recursively.
"""
import pickle

import numpy as np
import pytest

# Keys this project adds to mmdet3d's schema (documented in
# render_pretrain.nuscenes_infos.infos); lidar_sweeps is mmdet3d's own key,
# absent from the shared frame because it was written without sweeps.
EXTRA_KEYS = {'cam_sweeps', 'map_seg_path', 'lidar_sweeps'}
REAL_PKL = 'n015-2018-07-24-11-22-45+0800.pkl'


def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def _compare(ours, ref, where, extra=frozenset()):
    """Recursively assert same keys (plus ``extra``) and same value types."""
    assert type(ours) is type(ref), f'{where}: {type(ours)} != {type(ref)}'
    if isinstance(ref, dict):
        assert set(ref) <= set(ours), f'{where}: missing keys {set(ref) - set(ours)}'
        unexpected = set(ours) - set(ref) - extra
        assert not unexpected, f'{where}: unexpected keys {unexpected}'
        for key in ref:
            _compare(ours[key], ref[key], f'{where}.{key}')
    elif isinstance(ref, list) and ref and ours:
        if isinstance(ref[0], (dict, list)):
            _compare(ours[0], ref[0], f'{where}[0]')
        else:
            assert len(ours) == len(ref), f'{where}: length {len(ours)} != {len(ref)}'
            for i, (a, b) in enumerate(zip(ours, ref)):
                assert type(a) is type(b), f'{where}[{i}]: {type(a)} != {type(b)}'


def test_schema_matches_mmdet3d_converter(synthetic_infos, real_frame):
    ref = _load(real_frame / REAL_PKL)
    ours = _load(synthetic_infos['train'])
    assert set(ours) == {'metainfo', 'data_list'}
    assert set(ref['metainfo']) <= set(ours['metainfo'])
    for key in ('dataset', 'version', 'info_version'):
        assert type(ours['metainfo'][key]) is type(ref['metainfo'][key])
    assert ours['metainfo']['info_version'] == '1.1'
    assert ours['metainfo']['version'] == 'v1.0-mini'
    assert {k: v for k, v in ours['metainfo']['categories'].items() if v >= 0} == \
        ref['metainfo']['categories']
    ref_info = ref['data_list'][0]
    # a sample whose every camera sees a box, so that nested lists are compared
    candidates = [info for info in ours['data_list']
                  if info['instances'] and all(info['cam_instances'].values())]
    info = candidates[0] if candidates else ours['data_list'][0]
    assert info['instances'], 'the synthetic world should have annotated boxes'
    _compare(info, ref_info, 'info', extra=EXTRA_KEYS)
    assert [info['sample_idx'] for info in ours['data_list']] == list(range(len(ours['data_list'])))


def test_lidar_sweeps_layout_and_values(synthetic_infos):
    """lidar_sweeps follows update_infos_to_v2's layout; lidar2sensor is exact."""
    data = _load(synthetic_infos['train'])['data_list']
    with_sweeps = [info for info in data if 'lidar_sweeps' in info]
    if not with_sweeps:
        pytest.skip('the synthetic world has no LiDAR sweeps between key frames')
    sweep = with_sweeps[-1]['lidar_sweeps'][0]
    assert set(sweep) == {'timestamp', 'ego2global', 'lidar_points', 'sample_data_token'}
    assert set(sweep['lidar_points']) == {'num_pts_feats', 'lidar_path', 'lidar2ego',
                                          'lidar2sensor'}
    assert sweep['timestamp'] < with_sweeps[-1]['timestamp']
    key = with_sweeps[-1]
    lidar2global = np.array(key['ego2global']) @ np.array(key['lidar_points']['lidar2ego'])
    sweep2global = np.array(sweep['ego2global']) @ np.array(sweep['lidar_points']['lidar2ego'])
    lidar2sensor = np.linalg.inv(sweep2global) @ lidar2global
    np.testing.assert_allclose(sweep['lidar_points']['lidar2sensor'], lidar2sensor,
                               atol=2e-3)
