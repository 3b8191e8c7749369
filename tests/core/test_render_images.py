"""Tests for render_pretrain.visualization.render_images."""
import numpy as np
import torch

from render_pretrain.visualization.render_images import (cameras_side_by_side, depth_to_uint8,
                                                         enlarge_to_min_height, rgb_to_uint8)


def test_rgb_is_clamped_and_scaled(device):
    img = torch.tensor([[[0.0, 1.0, 2.0]], [[-1.0, 0.5, 0.2]], [[1.0, 1.0, 0.0]]],
                       device=device)  # (3, 1, 3)
    out = rgb_to_uint8(img)
    assert out.shape == (1, 3, 3) and out.dtype == np.uint8
    assert out[0].tolist() == [[0, 0, 255], [255, 127, 255], [255, 51, 0]]


def test_depth_near_is_bright_and_empty_is_black(device):
    depth = torch.tensor([[0.0, 1.0, 10.0, 20.0]], device=device)
    grey = depth_to_uint8(depth, max_depth=10.0)[0, :, 0]
    assert grey.tolist() == [0, int((0.15 + 0.85 * 0.9) * 255), int(0.15 * 255), int(0.15 * 255)]
    assert (depth_to_uint8(depth, 10.0)[..., 0] == depth_to_uint8(depth, 10.0)[..., 2]).all()


def test_cameras_side_by_side_and_enlarge(device):
    views = torch.arange(12.0, device=device).view(2, 2, 3)  # 2 cameras, 2 x 3
    row = cameras_side_by_side(views)
    assert row.tolist() == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    big = enlarge_to_min_height(image, 5)  # factor ceil(5 / 2) = 3
    assert big.shape == (6, 9) and (big[3:6, 6:9] == image[1, 2]).all()
    assert enlarge_to_min_height(image, 2) is image
