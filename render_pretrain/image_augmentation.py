"""Pixel maps of multi-view image augmentation (resize, crop, flip, rotate).

Every camera pipeline of this project (NS-MAE's BEVFusion-style
``BEVFusionCompatImageAug3D``, the BEVDet-compatible ``BEVDetImageAug`` and MIM4D's
``MIM4DSweepImageAug``) maps pixels the same way, composed here once:

``[u', v'] = R_rot @ F_flip @ (s * [u, v] - [x0, y0])``

* resize by ``s`` (original pixels -> resized pixels),
* crop: the window whose top-left corner is ``(x0, y0)`` in resized pixels
  becomes the output image of size ``(H_out, W_out)``,
* horizontal flip of the output image: ``u -> W_out - 1 - u``,
* rotation by ``angle`` degrees, clockwise in the displayed image (v axis
  down) for a positive angle, as ``mmcv.imrotate``, about the output centre
  ``((W_out - 1) / 2, (H_out - 1) / 2)``.

The result is the 4x4 ``img_aug_matrix`` of BEVFusion / BEVDet: original
pixels ``(u, v, d, 1)`` -> augmented ``(u', v', d, 1)`` (the depth ``d``,
metres, passes unchanged), consumed by
:func:`render_pretrain.camera_geometry.compose_lidar2img`.

The two BEVFusion-style transforms also draw their parameters with
:func:`draw_resize_crop_flip` (BEVDet draws its own way).
"""
from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ['image_aug_matrices', 'crop_to_canvas', 'draw_resize_crop_flip']


def image_aug_matrices(scale, crop, flip, angle, final_hw: Sequence[int]) -> np.ndarray:
    """Compose per-view resize / crop / flip / rotation pixel maps.

    Args:
        scale (array-like): (N,) resize factors ``s``.
        crop (array-like): (N, 2) crop corners ``(x0, y0)``, resized pixels
            (negative: the output is padded on that side).
        flip (array-like): (N,) bool, flip horizontally after the crop.
        angle (array-like): (N,) rotation in degrees after the flip.
        final_hw (Sequence[int]): Output size (H_out, W_out), pixels.

    Returns:
        np.ndarray: (N, 4, 4) float64 ``img_aug_matrix`` per view.

    Example:
        >>> m = image_aug_matrices([0.5], [[10, 20]], [True], [0.0], (32, 64))
        >>> m[0] @ np.array([100.0, 200.0, 7.0, 1.0])  # u' = 63 - (50 - 10)
        array([23., 80.,  7.,  1.])
    """
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    num = scale.shape[0]
    crop = np.asarray(crop, dtype=np.float64).reshape(num, 2)
    flip = np.asarray(flip, dtype=bool).reshape(num)
    theta = np.deg2rad(np.asarray(angle, dtype=np.float64).reshape(num))
    if len(final_hw) != 2 or min(final_hw) <= 0:
        raise ValueError(f'final_hw must be (H_out, W_out) > 0, got {tuple(final_hw)}')
    final_h, final_w = float(final_hw[0]), float(final_hw[1])

    resize_crop = np.tile(np.eye(4), (num, 1, 1))
    resize_crop[:, 0, 0] = scale
    resize_crop[:, 1, 1] = scale
    resize_crop[:, :2, 3] = -crop
    mirror = np.tile(np.eye(4), (num, 1, 1))
    mirror[flip, 0, 0] = -1.0
    mirror[flip, 0, 3] = final_w - 1.0
    rotate = np.tile(np.eye(4), (num, 1, 1))
    # Image axes point right and DOWN: this turn is clockwise on screen.
    cos, sin = np.cos(theta), np.sin(theta)
    rotate[:, 0, 0], rotate[:, 0, 1] = cos, -sin
    rotate[:, 1, 0], rotate[:, 1, 1] = sin, cos
    centre = np.array([(final_w - 1.0) / 2.0, (final_h - 1.0) / 2.0])
    rotate[:, :2, 3] = centre - np.einsum('nij,j->ni', rotate[:, :2, :2], centre)
    return rotate @ mirror @ resize_crop


def crop_to_canvas(image: np.ndarray, x0: int, y0: int, final_hw: Sequence[int]) -> np.ndarray:
    """Cut the window ``[y0, y0 + H_out) x [x0, x0 + W_out)`` out of an image.

    Parts of the window outside the image are zero (a negative ``y0`` pads
    the top, as BEVFusion's crop of a resized image shorter than the output).

    Args:
        image (np.ndarray): (H, W) or (H, W, C) resized image.
        x0 (int): Left column of the window, pixels.
        y0 (int): Top row of the window, pixels.
        final_hw (Sequence[int]): Window size (H_out, W_out).

    Returns:
        np.ndarray: (H_out, W_out[, C]) image of ``image``'s dtype.
    """
    final_h, final_w = int(final_hw[0]), int(final_hw[1])
    canvas = np.zeros((final_h, final_w) + image.shape[2:], image.dtype)
    src = image[max(y0, 0):max(y0 + final_h, 0), max(x0, 0):max(x0 + final_w, 0)]
    dst_y, dst_x = max(-y0, 0), max(-x0, 0)
    canvas[dst_y:dst_y + src.shape[0], dst_x:dst_x + src.shape[1]] = src
    return canvas


def draw_resize_crop_flip(rng: Optional[np.random.Generator], image_hw: Sequence[int],
                          final_hw: Sequence[int], resize_lim: Sequence[float],
                          bot_pct_lim: Sequence[float], rand_flip: bool, is_train: bool,
                          resize_relative: bool = False) -> Tuple[float, int, int, bool]:
    """Draw BEVFusion-style resize / crop / flip parameters for one image.

    Training draws, in this order, ``s ~ U(resize_lim)``, the bottom crop
    fraction ``b ~ U(bot_pct_lim)``, the crop column ``x0 ~ U(0, W' -
    W_out)`` and (with ``rand_flip``) a fair coin for the flip; testing uses
    the means, a centred column and no flip. The crop keeps the bottom of
    the resized image (size ``W' x H'``): ``y0 = int((1 - b) H') - H_out``.

    Args:
        rng (np.random.Generator, optional): Randomness source (training
            only; may be None at test time).
        image_hw (Sequence[int]): (H, W) of the input image, pixels.
        final_hw (Sequence[int]): (H_out, W_out) of the output image.
        resize_lim (Sequence[float]): Range of ``s``.
        bot_pct_lim (Sequence[float]): Range of ``b``.
        rand_flip (bool): Draw a horizontal flip.
        is_train (bool): Draw (True) or use the deterministic test values.
        resize_relative (bool): Multiply ``s`` by ``W_out / W`` (the limits
            are then relative to an image already as wide as the output).

    Returns:
        tuple[float, int, int, bool]: ``s``, crop corner ``x0`` and ``y0``
        (resized pixels, for :func:`crop_to_canvas` and
        :func:`image_aug_matrices`), flip.
    """
    height, width = int(image_hw[0]), int(image_hw[1])
    final_h, final_w = int(final_hw[0]), int(final_hw[1])
    if is_train:
        scale = float(rng.uniform(*resize_lim))
        bot_pct = float(rng.uniform(*bot_pct_lim))
    else:
        scale = float(np.mean(resize_lim))
        bot_pct = float(np.mean(bot_pct_lim))
    if resize_relative:
        scale *= final_w / width
    new_w, new_h = int(width * scale), int(height * scale)
    y0 = int((1 - bot_pct) * new_h) - final_h
    x0 = (int(rng.uniform(0, max(0, new_w - final_w))) if is_train
          else max(0, new_w - final_w) // 2)
    flip = bool(is_train and rand_flip and rng.uniform() < 0.5)
    return scale, x0, y0, flip
