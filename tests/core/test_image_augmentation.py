"""Tests for render_pretrain.image_augmentation (pixel maps of image augmentation)."""
import mmcv
import numpy as np
import pytest

from render_pretrain.image_augmentation import crop_to_canvas, image_aug_matrices


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
