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

Drawing. The two BEVFusion-style transforms draw with
:func:`draw_resize_crop_flip` (one camera at a time, absolute scale range),
BEVDet with :func:`draw_bevdet_resize_crop_flip_rotate` (all views at once,
a scale offset added to ``W_out / W``); the draw order of each is its
released code's and is pinned by the seeded-randomness tests.

Warping. BEVFusion's ``ImageAug3D`` (and MIM4D) resize, cut the window, flip
and rotate in four steps (:func:`resize_crop_flip_rotate_image`, used by
:func:`augment_views_resize_crop_flip_rotate`); BEVDet warps once with the
matrix itself (:func:`warp_image_with_matrix`). Both are bilinear (OpenCV)
and agree with :func:`image_aug_matrices` up to the resampling.
"""
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    'image_aug_matrices', 'crop_to_canvas', 'draw_resize_crop_flip',
    'draw_bevdet_resize_crop_flip_rotate', 'resize_crop_flip_rotate_image',
    'warp_image_with_matrix', 'augment_views_resize_crop_flip_rotate'
]


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


def draw_bevdet_resize_crop_flip_rotate(rng: Optional[np.random.Generator], src_hw: np.ndarray,
                                        final_hw: Sequence[int], resize_lim: Sequence[float],
                                        bot_pct_lim: Sequence[float], rot_lim: Sequence[float],
                                        rand_flip: bool, resize_test: float,
                                        test_mode: bool) -> dict:
    """Draw BEVDet-style augmentation parameters for every view at once.

    The scale is ``r = W_out / W + delta``; training draws, each as a vector
    over the N views and in this order, ``delta ~ U(resize_lim)``, the
    bottom crop fraction ``b ~ U(bot_pct_lim)``, the crop column fraction
    ``c ~ U(0, 1)``, a flip coin ``< 0.5`` (kept only with ``rand_flip``) and
    the angle ``~ U(rot_lim)`` degrees (BEVDet's ``img_transform``). Test
    mode uses ``delta = resize_test``, the mean ``b``, ``c = 0.5``, no flip
    and no rotation. With resized size ``H' = floor(H r)``, ``W' = floor(W
    r)``: ``crop_h = floor((1 - b) H') - H_out`` and ``crop_w = floor(c
    max(0, W' - W_out))``.

    Args:
        rng (np.random.Generator, optional): Randomness (None in test mode).
        src_hw (np.ndarray): (N, 2) original image sizes (H, W), pixels.
        final_hw (Sequence[int]): (H_out, W_out) of the output images.
        resize_lim (Sequence[float]): Range of ``delta``.
        bot_pct_lim (Sequence[float]): Range of ``b``.
        rot_lim (Sequence[float]): Range of the angle, degrees.
        rand_flip (bool): Keep the drawn flips.
        resize_test (float): ``delta`` in test mode.
        test_mode (bool): Deterministic parameters, nothing drawn.

    Returns:
        dict: ``resize`` (N,), ``crop`` (N, 2) as (crop_w, crop_h) in resized
        pixels, ``flip`` (N,) bool, ``rot`` (N,) degrees; the arguments of
        :func:`image_aug_matrices`.
    """
    src_hw = np.asarray(src_hw, dtype=np.float64).reshape(-1, 2)
    n_view = src_hw.shape[0]
    f_h, f_w = int(final_hw[0]), int(final_hw[1])
    base = f_w / src_hw[:, 1]
    if test_mode:
        resize = base + resize_test
        bot_pct = np.full(n_view, float(np.mean(bot_pct_lim)))
        crop_frac = np.full(n_view, 0.5)
        flip = np.zeros(n_view, dtype=bool)
        rot = np.zeros(n_view)
    else:
        resize = base + rng.uniform(*resize_lim, size=n_view)
        bot_pct = rng.uniform(*bot_pct_lim, size=n_view)
        crop_frac = rng.uniform(0.0, 1.0, size=n_view)
        flip = (rng.uniform(0.0, 1.0, size=n_view) < 0.5) & rand_flip
        rot = rng.uniform(*rot_lim, size=n_view)
    new_h = np.floor(src_hw[:, 0] * resize)
    new_w = np.floor(src_hw[:, 1] * resize)
    crop_h = np.floor((1.0 - bot_pct) * new_h) - f_h
    crop_w = np.floor(crop_frac * np.maximum(0.0, new_w - f_w))
    return dict(resize=resize, crop=np.stack([crop_w, crop_h], axis=-1), flip=flip, rot=rot)


def resize_crop_flip_rotate_image(image: np.ndarray, scale: float, x0: int, y0: int,
                                  flip: bool, angle: float,
                                  final_hw: Sequence[int]) -> np.ndarray:
    """Resize, cut the window, flip and rotate one image (BEVFusion's ``ImageAug3D`` steps).

    The image is resized to ``(int(W s), int(H s))`` (bilinear, as
    ``mmcv.imresize``), the window at ``(x0, y0)`` is cut
    (:func:`crop_to_canvas`, zero outside), mirrored when ``flip`` and
    rotated by ``angle`` degrees about its centre ``((W_out - 1) / 2, (H_out
    - 1) / 2)`` (bilinear, zero border, as ``mmcv.imrotate``; skipped for
    0). Pixels move as :func:`image_aug_matrices` of the same parameters.

    Args:
        image (np.ndarray): (H, W[, C]) original image.
        scale (float): Resize factor ``s``.
        x0 (int): Window column in resized pixels.
        y0 (int): Window row in resized pixels (negative pads the top).
        flip (bool): Mirror horizontally after the crop.
        angle (float): Rotation after the flip, degrees (clockwise on
            screen for a positive angle).
        final_hw (Sequence[int]): (H_out, W_out).

    Returns:
        np.ndarray: (H_out, W_out[, C]) image, ``image``'s dtype.
    """
    height, width = image.shape[:2]
    resized = cv2.resize(image, (int(width * scale), int(height * scale)),
                         interpolation=cv2.INTER_LINEAR)
    out = crop_to_canvas(resized, x0, y0, final_hw)
    if flip:
        out = out[:, ::-1].copy()
    if angle != 0.0:
        final_h, final_w = out.shape[:2]
        centre = ((final_w - 1) * 0.5, (final_h - 1) * 0.5)
        out = cv2.warpAffine(out, cv2.getRotationMatrix2D(centre, -angle, 1.0),
                             (final_w, final_h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def warp_image_with_matrix(image: np.ndarray, aug_matrix: np.ndarray,
                           final_hw: Sequence[int]) -> np.ndarray:
    """Warp one image with its ``img_aug_matrix`` in one bilinear step (BEVDet).

    Output pixel ``(u', v')`` takes the input at ``A^-1 (u', v')`` with ``A``
    the 2D part (rows 0-1, columns 0, 1, 3) of ``aug_matrix``; outside the
    input is zero.

    Args:
        image (np.ndarray): (H, W[, C]) original image.
        aug_matrix (np.ndarray): (4, 4) original -> augmented pixels.
        final_hw (Sequence[int]): (H_out, W_out).

    Returns:
        np.ndarray: (H_out, W_out[, C]) image, ``image``'s dtype.
    """
    final_h, final_w = int(final_hw[0]), int(final_hw[1])
    return cv2.warpAffine(image, np.asarray(aug_matrix)[:2, [0, 1, 3]], (final_w, final_h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def augment_views_resize_crop_flip_rotate(
        images: Sequence[np.ndarray], rng: Optional[np.random.Generator],
        final_hw: Sequence[int], resize_lim: Sequence[float], bot_pct_lim: Sequence[float],
        rot_lim: Optional[Sequence[float]], rand_flip: bool, is_train: bool,
        resize_relative: bool = False,
        num_draws: Optional[int] = None) -> Tuple[List[np.ndarray], np.ndarray]:
    """BEVFusion-style augmentation of multi-view images, with their matrices.

    Parameters are drawn for the first ``D = num_draws`` views, in view
    order, each with :func:`draw_resize_crop_flip` followed (training, and
    ``rot_lim`` given) by an angle ``~ U(rot_lim)`` degrees; view ``i``
    uses the draw ``i mod D`` (MIM4D: D = N_cam, one draw per camera shared
    by all its sweeps; BEVFusion: D = N, one per image).

    Args:
        images (Sequence[np.ndarray]): N images (H, W[, C]).
        rng (np.random.Generator, optional): Randomness (training only).
        final_hw (Sequence[int]): (H_out, W_out).
        resize_lim, bot_pct_lim (Sequence[float]): See
            :func:`draw_resize_crop_flip`.
        rot_lim (Sequence[float], optional): Rotation range in degrees; None
            draws no angle (no rotation).
        rand_flip (bool): Draw horizontal flips.
        is_train (bool): Draw (else the deterministic test values).
        resize_relative (bool): See :func:`draw_resize_crop_flip`.
        num_draws (int, optional): D, dividing N; None: D = N.

    Returns:
        tuple: the N augmented images (H_out, W_out[, C]) and their (N, 4, 4)
        float64 ``img_aug_matrix`` (original -> augmented pixels).
    """
    num = len(images)
    draws = num if num_draws is None else int(num_draws)
    if draws <= 0 or num % draws:
        raise ValueError(f'{num} images are not a multiple of num_draws={num_draws}')
    params = []
    for view in range(draws):
        scale, x0, y0, flip = draw_resize_crop_flip(
            rng, images[view].shape[:2], final_hw, resize_lim, bot_pct_lim, rand_flip,
            is_train, resize_relative)
        angle = float(rng.uniform(*rot_lim)) if is_train and rot_lim is not None else 0.0
        params.append((scale, x0, y0, flip, angle))
    out = [resize_crop_flip_rotate_image(img, *params[view % draws], final_hw)
           for view, img in enumerate(images)]
    scale, x0, y0, flip, angle = (np.array(v) for v in zip(*params))
    mats = image_aug_matrices(scale, np.stack([x0, y0], -1), flip, angle, final_hw)
    return out, np.tile(mats, (num // draws, 1, 1))
