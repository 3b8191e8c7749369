"""Tests for render_pretrain.image_augmentation (pixel maps of image augmentation).

No `device` parametrisation: these are numpy functions of the data pipeline (CPU by design).
"""
import mmcv
import numpy as np
import pytest

from render_pretrain.image_augmentation import (augment_views_resize_crop_flip_rotate,
                                                crop_to_canvas,
                                                draw_bevdet_resize_crop_flip_rotate,
                                                draw_resize_crop_flip, image_aug_matrices,
                                                resize_crop_flip_rotate_image,
                                                warp_image_with_matrix)


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


@pytest.mark.parametrize('flip,angle', [(False, 0.0), (True, 0.0), (True, 7.5)])
def test_resize_crop_flip_rotate_image_equals_the_mmcv_steps(flip, angle):
    """BEVFusion's ImageAug3D steps written with mmcv and numpy slicing."""
    image = np.random.default_rng(1).integers(0, 255, (45, 80, 3)).astype(np.uint8)
    scale, x0, y0, final_hw = 0.7, 5, -3, (32, 48)
    resized = mmcv.imresize(image, (int(80 * scale), int(45 * scale)))
    expected = np.zeros((32, 48, 3), np.uint8)
    window = resized[0:29, 5:53]  # rows y0..y0+32 clipped at 0; the top 3 rows stay zero
    expected[3:3 + window.shape[0], :window.shape[1]] = window
    if flip:
        expected = expected[:, ::-1]
    if angle:
        expected = mmcv.imrotate(np.ascontiguousarray(expected), angle)
    out = resize_crop_flip_rotate_image(image, scale, x0, y0, flip, angle, final_hw)
    assert out.dtype == np.uint8 and np.array_equal(out, expected)


def test_warp_image_with_matrix_moves_a_dot_where_the_matrix_says():
    image = np.zeros((40, 60), np.float32)
    image[10, 20] = 1.0  # (u, v) = (20, 10)
    mat = image_aug_matrices([1.0], [(4, 2)], [True], [0.0], (30, 50))[0]
    out = warp_image_with_matrix(image, mat, (30, 50))
    # crop moves it to (16, 8), the flip to (50 - 1 - 16, 8) = (33, 8)
    assert out.shape == (30, 50) and out[8, 33] == 1.0 and out.sum() == 1.0


def test_draw_bevdet_test_mode_by_hand_and_training_order():
    src_hw = np.array([[900.0, 1600.0], [450.0, 800.0]])
    params = draw_bevdet_resize_crop_flip_rotate(None, src_hw, (256, 704), (-0.06, 0.11),
                                                 (0.0, 0.2), (-5.4, 5.4), True, 0.04, True)
    # r = 704 / 1600 + 0.04 = 0.48 -> 432 x 768; crop_h = floor(0.9 * 432) - 256 = 132,
    # crop_w = floor(0.5 * (768 - 704)) = 32; view 2: r = 0.92 -> 414 x 736 -> 116, 16
    assert np.allclose(params['resize'], [0.48, 0.92])
    assert params['crop'].tolist() == [[32.0, 132.0], [16.0, 116.0]]
    assert not params['flip'].any() and not params['rot'].any()
    # training draws vectors in BEVDet's order: delta, bottom, column, flip coin, angle
    rng = np.random.default_rng(3)
    params = draw_bevdet_resize_crop_flip_rotate(rng, src_hw, (256, 704), (-0.06, 0.11),
                                                 (0.0, 0.0), (-5.4, 5.4), True, 0.0, False)
    ref = np.random.default_rng(3)
    delta, _, column, coin, rot = (ref.uniform(-0.06, 0.11, 2), ref.uniform(0, 0, 2),
                                   ref.uniform(0, 1, 2), ref.uniform(0, 1, 2),
                                   ref.uniform(-5.4, 5.4, 2))
    assert np.allclose(params['resize'], 704 / src_hw[:, 1] + delta)
    new_w = np.floor(src_hw[:, 1] * params['resize'])
    assert np.allclose(params['crop'][:, 0], np.floor(column * np.maximum(0, new_w - 704)))
    assert params['flip'].tolist() == (coin < 0.5).tolist() and np.allclose(params['rot'], rot)


def test_augment_views_shares_a_draw_per_camera_across_sweeps():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (45, 80, 3)).astype(np.uint8) for _ in range(3)] * 2
    out, mats = augment_views_resize_crop_flip_rotate(
        images, np.random.default_rng(4), (16, 32), (0.5, 0.7), (0.0, 0.1), None, True, True,
        num_draws=3)
    assert len(out) == 6 and mats.shape == (6, 4, 4)
    for view in range(3):  # the same image of sweeps 0 and 1 is augmented the same way
        assert np.array_equal(out[view], out[view + 3])
        assert np.array_equal(mats[view], mats[view + 3])
    # each view is the step-by-step warp of its own draw (no angle drawn: rot_lim None)
    ref = np.random.default_rng(4)
    for view in range(3):
        scale, x0, y0, flip = draw_resize_crop_flip(ref, (45, 80), (16, 32), (0.5, 0.7),
                                                    (0.0, 0.1), True, True)
        assert np.array_equal(out[view], resize_crop_flip_rotate_image(
            images[view], scale, x0, y0, flip, 0.0, (16, 32)))
        assert np.allclose(mats[view], image_aug_matrices([scale], [(x0, y0)], [flip], [0.0],
                                                          (16, 32))[0])
    with pytest.raises(ValueError, match='multiple of num_draws'):
        augment_views_resize_crop_flip_rotate(images[:5], None, (16, 32), (1, 1), (0, 0), None,
                                              False, False, num_draws=3)
