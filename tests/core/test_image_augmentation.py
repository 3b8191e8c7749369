"""Tests for render_pretrain.image_augmentation (pixel maps of image augmentation).

No `device` parametrisation: these are numpy functions of the data pipeline (CPU by design).
"""
import mmcv
import numpy as np
import pytest

from render_pretrain.image_augmentation import (crop_to_canvas, draw_resize_crop_flip,
                                                image_aug_matrices)


def _step_by_step(u, v, scale, x0, y0, flip, angle, final_hw):
    """The same map, one operation at a time, in plain scalars."""
    u, v = u * scale - x0, v * scale - y0
    if flip:
        u = final_hw[1] - 1 - u
    cu, cv = (final_hw[1] - 1) / 2, (final_hw[0] - 1) / 2
    t = np.deg2rad(angle)
    du, dv = u - cu, v - cv
    return cu + np.cos(t) * du - np.sin(t) * dv, cv + np.sin(t) * du + np.cos(t) * dv


def test_matrices_equal_the_step_by_step_map():
    rng = np.random.default_rng(0)
    num = 5
    scale = rng.uniform(0.3, 1.2, num)
    crop = rng.uniform(-20, 80, (num, 2))
    flip = np.array([True, False, True, False, True])
    angle = rng.uniform(-10, 10, num)
    mats = image_aug_matrices(scale, crop, flip, angle, (64, 96))
    assert mats.shape == (num, 4, 4)
    for n in range(num):
        u, v, d = rng.uniform(0, 300), rng.uniform(0, 200), rng.uniform(1, 60)
        out = mats[n] @ np.array([u, v, d, 1.0])
        expected = _step_by_step(u, v, scale[n], *crop[n], flip[n], angle[n], (64, 96))
        np.testing.assert_allclose(out[:2], expected, atol=1e-9)
        assert out[2] == pytest.approx(d) and out[3] == 1.0


def test_rotation_matches_mmcv_imrotate():
    # A bright pixel moved by mmcv.imrotate lands where the matrix sends it.
    image = np.zeros((41, 61), np.float32)
    u, v = 45, 12
    image[v, u] = 1.0
    rotated = mmcv.imrotate(image, 20.0, interpolation='nearest')
    mat = image_aug_matrices([1.0], [(0, 0)], [False], [20.0], (41, 61))[0]
    pu, pv = (mat @ np.array([u, v, 1.0, 1.0]))[:2]
    peak_v, peak_u = np.unravel_index(np.argmax(rotated), rotated.shape)
    assert abs(peak_u - pu) <= 1 and abs(peak_v - pv) <= 1


def test_crop_to_canvas_pads_outside_the_image():
    image = np.arange(1, 21, dtype=np.uint8).reshape(4, 5)
    out = crop_to_canvas(image, x0=2, y0=-1, final_hw=(3, 4))
    np.testing.assert_array_equal(out, [[0, 0, 0, 0], [3, 4, 5, 0], [8, 9, 10, 0]])
    assert crop_to_canvas(image[..., None], 0, 0, (4, 5))[..., 0].tolist() == image.tolist()
    assert not crop_to_canvas(image, 10, 10, (2, 2)).any()


def test_bad_output_size_raises():
    with pytest.raises(ValueError, match='final_hw'):
        image_aug_matrices([1.0], [(0, 0)], [False], [0.0], (0, 5))


def test_draw_resize_crop_flip_test_mode_and_training_ranges():
    """Test mode: mean scale, centred column, bottom-aligned crop, no flip; training
    draws inside the limits, and the crop window stays inside the resized width."""
    rng = np.random.default_rng(0)
    # 900 x 1600 -> s = 0.5 -> 450 x 800; b = 0.1: y0 = int(0.9 * 450) - 256 = 149,
    # x0 = (800 - 704) // 2 = 48.
    assert draw_resize_crop_flip(rng, (900, 1600), (256, 704), (0.4, 0.6), (0.0, 0.2),
                                 True, False) == (0.5, 48, 149, False)
    # Relative resize: the limits apply to an image already 704 wide.
    scale, x0, _, _ = draw_resize_crop_flip(rng, (900, 1600), (256, 704), (1.0, 1.0),
                                            (0.0, 0.0), False, False, resize_relative=True)
    assert scale == pytest.approx(704 / 1600) and x0 == 0
    flips = []
    for _ in range(200):
        scale, x0, y0, flip = draw_resize_crop_flip(rng, (900, 1600), (256, 704),
                                                    (0.38, 0.55), (0.0, 0.0), True, True)
        new_w, new_h = int(1600 * scale), int(900 * scale)
        assert 0.38 <= scale <= 0.55
        assert 0 <= x0 <= max(0, new_w - 704) and y0 == new_h - 256
        flips.append(flip)
    assert 60 < sum(flips) < 140
