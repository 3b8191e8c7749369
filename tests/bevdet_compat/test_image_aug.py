"""BEVDetImageAug: the recorded img_aug_matrix moves pixels exactly as the warp does."""
import numpy as np
import pytest

from mmdet3d.registry import TRANSFORMS
import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers the transforms)


def spot_images(num_views, hw, spots):
    imgs = []
    for (u, v) in spots[:num_views]:
        img = np.zeros(hw + (3, ), dtype=np.float32)
        img[v - 1:v + 2, u - 1:u + 2] = 255.0  # 3x3 spot centred on pixel (u, v)
        imgs.append(img)
    return imgs


def spot_centre(img):
    w = img[..., 0]
    v, u = np.mgrid[:w.shape[0], :w.shape[1]]
    return np.array([(u * w).sum() / w.sum(), (v * w).sum() / w.sum()])


def test_test_mode_matrix_is_bevdet_resize_and_bottom_crop():
    aug = TRANSFORMS.build(dict(type='BEVDetImageAug', final_size=(256, 704), test_mode=True))
    res = aug(dict(img=[np.zeros((900, 1600, 3), np.float32)] * 2))
    expected = np.eye(4, dtype=np.float32)
    expected[0, 0] = expected[1, 1] = 0.44  # 704 / 1600
    expected[1, 3] = -(396 - 256)  # resized height 396, crop from the bottom
    for mat in res['img_aug_matrix']:
        np.testing.assert_allclose(mat, expected, atol=1e-6)
    assert [img.shape for img in res['img']] == [(256, 704, 3)] * 2
    assert res['img_shape'] == (256, 704)


def test_matrix_maps_pixels_like_the_warp_in_training():
    spots = [(800, 600), (400, 700), (1200, 650)]
    aug = TRANSFORMS.build(
        dict(type='BEVDetImageAug', final_size=(256, 704), resize_lim=(-0.06, 0.11),
             bot_pct_lim=(0.0, 0.1), rot_lim=(-5.4, 5.4), rand_flip=True, seed=3))
    found_flip = set()
    for _ in range(4):
        res = aug(dict(img=spot_images(3, (900, 1600), spots)))
        mats = np.stack(res['img_aug_matrix'])
        assert mats.shape == (3, 4, 4) and mats.dtype == np.float32
        assert not np.allclose(mats[0], mats[1])  # views are augmented independently
        np.testing.assert_allclose(mats[:, 2:, :], np.eye(4)[2:].reshape(1, 2, 4).repeat(3, 0))
        for mat, img, (u, v) in zip(mats, res['img'], spots):
            expected = mat[:2, :2] @ np.array([u, v], np.float64) + mat[:2, 3]
            np.testing.assert_allclose(spot_centre(img), expected, atol=0.25)
            found_flip.add(bool(mat[0, 0] < 0))
    assert found_flip == {True, False}


def test_missing_images_raise_a_clear_error():
    aug = TRANSFORMS.build(dict(type='BEVDetImageAug', final_size=(64, 176)))
    with pytest.raises(KeyError, match='LoadMultiViewImageFromFiles'):
        aug(dict(points=np.zeros((4, 3))))
