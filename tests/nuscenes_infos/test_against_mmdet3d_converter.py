"""Values equal those of mmdet3d 1.4.0's own converter on the same data root.

mmdet3d's ``nuscenes_converter.py`` and ``update_infos_to_v2.py`` (shipped in
the wheel under ``mmdet3d/.mim/tools/dataset_converters``) are loaded by file
path (their package name clashes with this repository's ``tools/``) and run
on the synthetic world. ``update_infos_to_v2`` hard-codes the data root
``./data/nuscenes``, hence the chdir into a folder linking it.

Known, documented differences: sweep ``lidar_path`` is data-root relative
here and cwd relative there; mmdet3d clips 2D boxes to a fixed 1600x900
canvas, we use the sample_data image size (identical for real nuScenes, so
``cam_instances`` are compared for the boxes inside the synthetic images).
"""
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

# mmdet3d's converter and ours on the session world (about 10 s)
pytestmark = pytest.mark.slow

CONVERTERS = Path('mmdet3d/.mim/tools/dataset_converters')


def _load_module(name):
    import mmdet3d
    path = Path(mmdet3d.__file__).parent.parent / CONVERTERS / f'{name}.py'
    spec = importlib.util.spec_from_file_location(f'mmdet3d_converters_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_same(ours, ref, where):
    if isinstance(ref, dict):
        assert set(ours) == set(ref), f'{where}: keys {set(ours) ^ set(ref)}'
        for key in ref:
            _assert_same(ours[key], ref[key], f'{where}.{key}')
    elif isinstance(ref, list):
        assert len(ours) == len(ref), f'{where}: length {len(ours)} != {len(ref)}'
        for i, (a, b) in enumerate(zip(ours, ref)):
            _assert_same(a, b, f'{where}[{i}]')
    elif isinstance(ref, str):
        assert ours == ref, where
    elif ref is None:
        assert ours is None, where
    else:
        assert type(ours) is type(ref), f'{where}: {type(ours)} != {type(ref)}'
        assert np.allclose(ours, ref, rtol=1e-6, atol=1e-5, equal_nan=True), \
            f'{where}: {ours} != {ref}'


def test_values_match_mmdet3d_converter(synthetic_infos, tmp_path, monkeypatch):
    converter = _load_module('nuscenes_converter')
    updater = _load_module('update_infos_to_v2')
    ref_root = tmp_path / 'data' / 'nuscenes'
    ref_root.mkdir(parents=True)
    for entry in synthetic_infos['root'].iterdir():  # links: the world stays untouched
        (ref_root / entry.name).symlink_to(entry)
    (tmp_path / 'v2').mkdir()
    monkeypatch.chdir(tmp_path)
    converter.create_nuscenes_infos('./data/nuscenes', 'mm', version='v1.0-mini',
                                    max_sweeps=10)
    with open(synthetic_infos['train'], 'rb') as f:
        ours = pickle.load(f)
    for split in ('train', 'val'):
        updater.update_nuscenes_infos(str(ref_root / f'mm_infos_{split}.pkl'), 'v2')
    with open(tmp_path / 'v2' / 'mm_infos_train.pkl', 'rb') as f:
        ref = pickle.load(f)
    assert ref['metainfo'] == {k: v for k, v in ours['metainfo'].items() if k != 'map_seg'}
    assert len(ref['data_list']) == len(ours['data_list']) > 0
    from nuscenes.nuscenes import NuScenes
    nusc = NuScenes('v1.0-mini', str(synthetic_infos['root']), verbose=False)
    compared_2d = 0
    for ours_info, ref_info in zip(ours['data_list'], ref['data_list']):
        ours_info = {k: v for k, v in ours_info.items() if k not in ('cam_sweeps', 'map_seg_path')}
        for sweep in ref_info.get('lidar_sweeps', []):
            sweep['lidar_points']['lidar_path'] = str(
                Path(sweep['lidar_points']['lidar_path']).relative_to('data/nuscenes'))
        for cam, records in ref_info['cam_instances'].items():
            # mmdet3d clips to a fixed 1600x900 canvas: compare the boxes whose
            # clipped 2D box lies in the real image, where both must agree
            sd = nusc.get('sample_data', ref_info['images'][cam]['sample_data_token'])
            inside = [r for r in records
                      if r['bbox'][2] <= sd['width'] and r['bbox'][3] <= sd['height']]
            ours_inside = [r for r in ours_info['cam_instances'][cam]
                           if any(np.allclose(r['bbox_3d'], q['bbox_3d']) for q in inside)]
            ref_info['cam_instances'][cam] = inside
            ours_info['cam_instances'][cam] = ours_inside
            compared_2d += len(inside)
        _assert_same(ours_info, ref_info, ref_info['token'])
    assert compared_2d > 10
