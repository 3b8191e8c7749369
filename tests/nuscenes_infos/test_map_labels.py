"""BEV map labels lie under the LiDAR returns of the road surface."""
import pickle

import numpy as np

from render_pretrain.nuscenes_infos import BEV_MAP_CLASSES, BevMapRasterizer, load_map_label

# LIDAR_TOP height above the ground in the synthetic rig (sensor_rig.py),
# read from the info itself below; returns within this margin of the ground
# plane hit the road/car-park surface (sidewalks are raised by 0.15 m).
GROUND_MARGIN = 0.07


def test_drivable_area_under_ground_returns(synthetic_infos):
    with open(synthetic_infos['train'], 'rb') as f:
        data = pickle.load(f)
    assert data['metainfo']['map_seg']['classes'] == list(BEV_MAP_CLASSES)
    infos = [info for info in data['data_list'] if 'map_seg_path' in info]
    assert len(infos) == len(data['data_list']), 'every synthetic location has a map'
    rasterizer = BevMapRasterizer(synthetic_infos['root'])
    drivable = BEV_MAP_CLASSES.index('drivable_area')
    walkway = BEV_MAP_CLASSES.index('walkway')
    hits, total, walk_hits, walk_total = 0, 0, 0, 0
    for info in infos[:3]:
        label = load_map_label(synthetic_infos['out_dir'] / info['map_seg_path'])
        assert label.shape == (6, 200, 200) and label.dtype == bool
        assert 0.05 < label[drivable].mean() < 0.95  # not trivially all/none
        lidar2ego = np.array(info['lidar_points']['lidar2ego'])
        ground_z = -lidar2ego[2, 3]  # ego origin is on the ground
        points = np.fromfile(synthetic_infos['root'] / 'samples/LIDAR_TOP' /
                             info['lidar_points']['lidar_path'], dtype=np.float32).reshape(-1, 5)
        idx, inside = rasterizer.grid_indices(points[:, :2].astype(np.float64))
        ground = inside & (np.abs(points[:, 2] - ground_z) < GROUND_MARGIN)
        hits += label[drivable][idx[ground, 0], idx[ground, 1]].sum()
        total += ground.sum()
        top = inside & (np.abs(points[:, 2] - ground_z - 0.15) < 0.03)
        walk_hits += label[walkway][idx[top, 0], idx[top, 1]].sum()
        walk_total += top.sum()
    assert total > 500
    assert hits / total > 0.95, f'{hits}/{total} ground returns on drivable cells'
    # sidewalk-top returns land on walkway cells: x/y axes are not swapped
    assert walk_total > 50 and walk_hits / walk_total > 0.8, f'{walk_hits}/{walk_total}'


def test_transposed_label_would_fail(synthetic_infos):
    """Swapping the label's x/y axes breaks the road alignment (test is sharp)."""
    with open(synthetic_infos['train'], 'rb') as f:
        info = pickle.load(f)['data_list'][0]
    label = load_map_label(synthetic_infos['out_dir'] / info['map_seg_path'])[0]
    ground_z = -np.array(info['lidar_points']['lidar2ego'])[2, 3]
    points = np.fromfile(synthetic_infos['root'] / 'samples/LIDAR_TOP' /
                         info['lidar_points']['lidar_path'], dtype=np.float32).reshape(-1, 5)
    idx, inside = BevMapRasterizer(synthetic_infos['root']).grid_indices(
        points[:, :2].astype(np.float64))
    ground = inside & (np.abs(points[:, 2] - ground_z) < GROUND_MARGIN)
    right = label[idx[ground, 0], idx[ground, 1]].mean()
    swapped = label.T[idx[ground, 0], idx[ground, 1]].mean()
    assert right > 0.95 and swapped < 0.9
