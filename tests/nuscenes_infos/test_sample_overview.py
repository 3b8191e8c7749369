"""The sample overview projects points and boxes where geometry says."""
import numpy as np

from render_pretrain.visualization import compose_sample_overview, load_sample_overview
from render_pretrain.visualization.sample_overview import (
    CLASS_COLOURS, legend_entries, lidar_box_corners)


def test_point_on_optical_axis_lands_on_principal_point():
    # camera looking along LiDAR +x: camera z = lidar x, camera x = -lidar y
    lidar2cam = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    cam2img = np.array([[100.0, 0, 60.0], [0, 100.0, 40.0], [0, 0, 1]])
    image = np.zeros((80, 120, 3), np.uint8)
    points = np.array([[10.0, 0.0, 0.0, 0, 0]])
    out = compose_sample_overview([image], ['CAM_FRONT'], lidar2cam[None], cam2img[None],
                                  points, np.zeros((0, 7)), panel_width=120)
    lit = np.argwhere(out[:, :120].any(-1))
    lit = lit[lit[:, 0] > 12]  # ignore the camera-name text
    np.testing.assert_array_equal(lit, [[40, 60]])


def test_box_corners_follow_yaw():
    box = np.array([[1.0, 2.0, 0.5, 4.0, 2.0, 1.0, np.pi / 2]])
    corners = lidar_box_corners(box)[0]
    # length 4 along +y after a 90 degree yaw, height 1 centred at z = 0.5
    np.testing.assert_allclose(np.ptp(corners, axis=0), [2.0, 4.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(corners.mean(0), [1.0, 2.0, 0.5], atol=1e-12)


def test_overview_of_a_synthetic_sample(synthetic_infos):
    image = load_sample_overview(synthetic_infos['train'], synthetic_infos['root'], 0,
                                 panel_width=160)
    height = image.shape[0]
    cameras, bev = image[:, :-height], image[:, -height:]
    assert cameras.shape[1] == 3 * 160
    box_pixels = np.isin(cameras.reshape(-1, 3).view('V3'), CLASS_COLOURS.view('V3')).sum()
    assert box_pixels > 50  # box edges drawn on the camera panels
    assert (bev.sum(-1) > 0).mean() > 0.01  # points (and map) in BEV


def test_boxes_coloured_by_class_with_a_legend():
    """Two boxes in front of one camera: each in its class colour, one legend row per class."""
    lidar2cam = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], float)
    cam2img = np.array([[100.0, 0, 60.0], [0, 100.0, 40.0], [0, 0, 1]])
    image = np.zeros((80, 120, 3), np.uint8)
    boxes = np.array([[10.0, 2.0, 0.0, 1.0, 1.0, 1.0, 0.0],
                      [10.0, -2.0, 0.0, 1.0, 1.0, 1.0, 0.0]])
    names = ['car', 'truck', 'pedestrian']
    out = compose_sample_overview([image], ['CAM_FRONT'], lidar2cam[None], cam2img[None],
                                  np.zeros((0, 5)), boxes, panel_width=120,
                                  labels=np.array([0, 2]), class_names=names)
    camera, bev = out[:, :120], out[:, 120:]
    car, pedestrian = CLASS_COLOURS[0], CLASS_COLOURS[2]
    # +y is left in the image: the car (y = +2 m) on the left half, the pedestrian on the right
    car_px = np.argwhere(np.all(camera == car, -1))
    ped_px = np.argwhere(np.all(camera == pedestrian, -1))
    assert len(car_px) > 20 and len(ped_px) > 20
    assert car_px[:, 1].max() < 60 < ped_px[:, 1].min()
    assert not np.all(camera == CLASS_COLOURS[1], -1).any()  # no truck
    assert [name for name, _ in legend_entries(np.array([0, 2]), names)] == ['car', 'pedestrian']
    # legend swatches at the top left of the BEV panel (below its title), one per class
    bottom = bev[16:44, 4:14]
    rows_car = np.argwhere(np.all(bottom == car, -1))[:, 0]
    rows_ped = np.argwhere(np.all(bottom == pedestrian, -1))[:, 0]
    assert len(rows_car) == len(rows_ped) == 100 and rows_car.max() < rows_ped.min()
    entries = legend_entries(np.array([7, -1, 7]), None)
    assert [name for name, _ in entries] == ['no class', 'class 7']
    assert entries[0][1].tolist() == [255, 40, 40] and entries[1][1].tolist() == [127, 127, 127]


def test_overview_legend_names_the_info_classes(synthetic_infos):
    import pickle
    with open(synthetic_infos['train'], 'rb') as f:
        content = pickle.load(f)
    info = content['data_list'][0]
    labels = {inst['bbox_label_3d'] for inst in info['instances'] if inst['num_lidar_pts'] > 0}
    names = {label: name for name, label in content['metainfo']['categories'].items()}
    image = load_sample_overview(synthetic_infos['train'], synthetic_infos['root'], 0)
    bev = image[:, -image.shape[0]:]
    assert bev.shape[0] >= 16 + 14 * len(labels)  # one legend column
    for row, label in enumerate(sorted(labels)):  # each class's swatch, by label
        swatch = bev[16 + 14 * row:26 + 14 * row, 4:14]
        assert np.all(swatch == CLASS_COLOURS[label % 10], -1).all(), names[label]
