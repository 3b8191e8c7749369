"""The sample overview projects points and boxes where geometry says."""
import numpy as np

from render_pretrain.visualization import compose_sample_overview, load_sample_overview
from render_pretrain.visualization.sample_overview import lidar_box_corners


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
    box_pixels = np.all(cameras == [255, 40, 40], axis=-1).sum()
    assert box_pixels > 50  # box edges drawn on the camera panels
    assert (bev.sum(-1) > 0).mean() > 0.01  # points (and map) in BEV
