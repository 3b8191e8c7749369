"""Camera geometry: LSS frusta, unprojection to LiDAR, projection and depth maps.

Conventions (the mmdet3d 1.x / BEVFusion ones):

* ``cam2img``: camera intrinsics, (3, 3) or (4, 4). A (3, 3) matrix is padded
  to (4, 4) with an identity last row/column.
* ``lidar2cam`` / ``cam2lidar``: rigid (4, 4) transforms, metres.
* ``lidar2img = cam2img @ lidar2cam`` (4, 4); for a LiDAR point ``p`` the
  homogeneous product ``q = lidar2img @ [p, 1]`` gives the pixel
  ``(q0 / q2, q1 / q2)`` and the depth ``q2`` (metres along the optical axis).
* ``img_aug_matrix`` (4, 4) maps ORIGINAL image pixels ``(u, v, d, 1)`` to
  AUGMENTED pixels (resize, crop, flip, rotate in its top-left (2, 2) block
  and translation in ``[:2, 3]``; ``d`` unchanged), as BEVFusion's
  ``ImageAug3D`` stores it. It acts AFTER the perspective division, so it
  cannot be left-multiplied onto ``lidar2img`` as is: use
  :func:`compose_lidar2img` (via :func:`image_aug_to_homogeneous`).
* ``lidar_aug_matrix`` (4, 4) maps ORIGINAL LiDAR coordinates to AUGMENTED
  ones (global rotation/scale/flip/translation), as BEVFusion's
  ``GlobalRotScaleTrans`` / ``BEVFusionRandomFlip3D`` store it.
* Pixel coordinates: integer ``(u, v)`` is the CENTRE of pixel column ``u`` /
  row ``v`` (OpenCV convention), so pixel ``i`` spans ``[i - 0.5, i + 0.5)``
  and a stride-``s`` cell ``j`` spans ``[s * j - 0.5, s * (j + 1) - 0.5)``.

All functions are batched with broadcasting, never loop over cameras, points
or batch items, and follow the device and dtype of their inputs.
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'create_frustum', 'intrinsics_to_4x4', 'image_aug_to_homogeneous', 'compose_lidar2img',
    'frustum_to_lidar', 'unproject_pixels_to_lidar',
    'project_points_to_image', 'render_depth_map_from_points'
]


def create_frustum(image_size: Sequence[int],
                   feature_size: Sequence[int],
                   depth_bins: Sequence[float],
                   pixel_convention: str = 'bevfusion',
                   dtype: torch.dtype = torch.float32,
                   device: Optional[torch.device] = None) -> Tensor:
    """Create the LSS frustum of (pixel, depth) samples of one camera.

    Depths are ``torch.arange(dmin, dmax, step)`` exactly as BEVFusion's
    ``BaseViewTransform.create_frustum`` (``dbound=[1, 60, 0.5]`` gives the
    paper's D = 118 bins at 1.0, 1.5, ..., 59.5 m).

    Pixel positions of the ``w`` feature columns (rows alike) depend on
    ``pixel_convention``:

    * ``'bevfusion'`` (default, what stock BEVFusion/BEVDet use, so that a
      pre-trained depth net sees the geometry of the fine-tune model):
      ``u_j = linspace(0, W - 1, w)[j]``.
    * ``'centre'``: the centre of the stride-``s`` cell (``s = W / w``),
      ``u_j = s * j + (s - 1) / 2``; it matches the cells of
      :func:`render_depth_map_from_points` exactly.

    Example:
        >>> f = create_frustum((256, 704), (32, 88), (1.0, 60.0, 0.5))
        >>> f.shape
        torch.Size([118, 32, 88, 3])
        >>> f[0, 0, -1].tolist(), f[-1, -1, 0].tolist()
        ([703.0, 0.0, 1.0], [0.0, 255.0, 59.5])

    Args:
        image_size: ``(H, W)`` of the (augmented) network input, pixels.
        feature_size: ``(h, w)`` of the feature map the frustum indexes.
        depth_bins: ``(dmin, dmax, step)`` in metres; ``dmax`` excluded.
        pixel_convention: ``'bevfusion'`` or ``'centre'`` (see above).
        dtype: Floating dtype of the result.
        device: Device of the result.

    Returns:
        Tensor: (D, h, w, 3) frustum, last dim ``(u, v, d)``: pixel column
        and row in the augmented input image (pixels) and depth (metres).
    """
    img_h, img_w = (int(s) for s in image_size)
    feat_h, feat_w = (int(s) for s in feature_size)
    if len(depth_bins) != 3 or depth_bins[2] <= 0 or depth_bins[1] <= depth_bins[0]:
        raise ValueError('create_frustum: depth_bins must be (dmin, dmax, step) '
                         f'with dmax > dmin and step > 0, got {tuple(depth_bins)}')
    depths = torch.arange(*depth_bins, dtype=dtype, device=device)
    if pixel_convention == 'bevfusion':
        xs = torch.linspace(0, img_w - 1, feat_w, dtype=dtype, device=device)
        ys = torch.linspace(0, img_h - 1, feat_h, dtype=dtype, device=device)
    elif pixel_convention == 'centre':
        stride_x, stride_y = img_w / feat_w, img_h / feat_h
        xs = torch.arange(feat_w, dtype=dtype, device=device) * stride_x + (stride_x - 1) / 2
        ys = torch.arange(feat_h, dtype=dtype, device=device) * stride_y + (stride_y - 1) / 2
    else:
        raise ValueError("create_frustum: pixel_convention must be 'bevfusion' or "
                         f"'centre', got {pixel_convention!r}")
    num_d = depths.numel()
    return torch.stack((xs.view(1, 1, feat_w).expand(num_d, feat_h, feat_w),
                        ys.view(1, feat_h, 1).expand(num_d, feat_h, feat_w),
                        depths.view(num_d, 1, 1).expand(num_d, feat_h, feat_w)), dim=-1)


def intrinsics_to_4x4(cam2img: Tensor) -> Tensor:
    """Pad (..., 3, 3) intrinsics to (..., 4, 4); (..., 4, 4) passes through.

    Args:
        cam2img: (..., 3, 3) or (..., 4, 4) camera-to-image intrinsics.

    Returns:
        Tensor: (..., 4, 4) intrinsics with ``[3, 3] = 1``.
    """
    if cam2img.shape[-2:] == (4, 4):
        return cam2img
    if cam2img.shape[-2:] != (3, 3):
        raise ValueError('cam2img must have shape (..., 3, 3) or (..., 4, 4), '
                         f'got {tuple(cam2img.shape)}')
    out = torch.zeros(cam2img.shape[:-2] + (4, 4), dtype=cam2img.dtype, device=cam2img.device)
    out[..., :3, :3] = cam2img
    out[..., 3, 3] = 1
    return out


def _check_4x4(name: str, matrix: Tensor) -> None:
    if matrix.shape[-2:] != (4, 4):
        raise ValueError(f'{name} must have shape (..., 4, 4), got {tuple(matrix.shape)}')


def image_aug_to_homogeneous(img_aug_matrix: Tensor) -> Tensor:
    """Turn an ``img_aug_matrix`` into a matrix acting on homogeneous pixels.

    ``img_aug_matrix`` acts on ``(u, v, d, 1)`` after the perspective
    division: ``u' = a u + b v + t_u``. Before the division a projected point
    is ``(u d, v d, d, 1)``, on which the same map is
    ``u' d = a (u d) + b (v d) + t_u d``: the translation moves from column 3
    to column 2. The result can therefore be chained with ``cam2img``.

    Args:
        img_aug_matrix: (..., 4, 4) affine pixel augmentation whose depth row
            is ``(0, 0, 1, 0)`` and whose ``(u, v)`` rows do not depend on
            ``d`` (true for resize, crop, flip and rotation).

    Returns:
        Tensor: (..., 4, 4) homogeneous-pixel augmentation.
    """
    _check_4x4('img_aug_matrix', img_aug_matrix)
    depth_row = img_aug_matrix.new_tensor([0.0, 0.0, 1.0, 0.0])
    depth_rows = img_aug_matrix[..., 2, :]
    if (not torch.allclose(depth_rows, depth_row.expand_as(depth_rows))
            or img_aug_matrix[..., :2, 2].abs().max() > 1e-6):
        raise ValueError('img_aug_matrix must keep the depth (row 2 = [0, 0, 1, 0]) and '
                         'must not mix depth into (u, v) (column 2 of rows 0-1 = 0)')
    out = img_aug_matrix.clone()
    out[..., :2, 2] = img_aug_matrix[..., :2, 3]
    out[..., :2, 3] = 0
    return out


def compose_lidar2img(cam2img: Tensor,
                      lidar2cam: Tensor,
                      img_aug_matrix: Optional[Tensor] = None,
                      lidar_aug_matrix: Optional[Tensor] = None) -> Tensor:
    """Compose the AUGMENTED-LiDAR to AUGMENTED-image projection.

    ``lidar2img = H(img_aug) @ cam2img @ lidar2cam @ inv(lidar_aug)`` with
    ``H`` = :func:`image_aug_to_homogeneous`, so that
    :func:`project_points_to_image` applied to augmented LiDAR points gives
    pixels of the augmented image (what the depth target of a network fed
    augmented inputs needs).

    Args:
        cam2img: (B, N, 3|4, 3|4) intrinsics (or any leading dims ``...``).
        lidar2cam: (B, N, 4, 4) original LiDAR -> camera, metres.
        img_aug_matrix: Optional (B, N, 4, 4) original -> augmented pixels.
        lidar_aug_matrix: Optional (B, 4, 4) original -> augmented LiDAR.

    Returns:
        Tensor: (B, N, 4, 4) lidar2img.
    """
    _check_4x4('lidar2cam', lidar2cam)
    out = intrinsics_to_4x4(cam2img) @ lidar2cam
    if img_aug_matrix is not None:
        out = image_aug_to_homogeneous(img_aug_matrix) @ out
    if lidar_aug_matrix is not None:
        _check_4x4('lidar_aug_matrix', lidar_aug_matrix)
        out = out @ torch.linalg.inv(lidar_aug_matrix).unsqueeze(-3)
    return out


def unproject_pixels_to_lidar(pixels: Tensor,
                              cam2img: Tensor,
                              cam2lidar: Tensor,
                              img_aug_matrix: Optional[Tensor] = None,
                              lidar_aug_matrix: Optional[Tensor] = None) -> Tensor:
    """Map (u, v, depth) samples of each camera to (augmented) LiDAR points.

    Steps (BEVFusion's ``get_geometry``): undo the image augmentation
    ``(u, v, d, 1) <- inv(img_aug) @ (u', v', d', 1)``; unproject
    ``p_cam = inv(cam2img) @ (u d, v d, d, 1)``; ``p = cam2lidar @ p_cam``;
    apply the LiDAR augmentation ``lidar_aug @ p``.
    Differentiable w.r.t. all inputs.

    Args:
        pixels: (B, N, ..., 3) samples ``(u, v, d)`` per camera: augmented
            image pixels and depth (metres); any sample dims ``...``.
        cam2img: (B, N, 3|4, 3|4) intrinsics.
        cam2lidar: (B, N, 4, 4) camera -> original LiDAR frame.
        img_aug_matrix: Optional (B, N, 4, 4) original -> augmented pixels.
        lidar_aug_matrix: Optional (B, 4, 4) original -> augmented LiDAR.

    Returns:
        Tensor: (B, N, ..., 3) points in the (augmented) LiDAR frame, metres.
    """
    _check_4x4('cam2lidar', cam2lidar)
    lead = cam2lidar.shape[:-2]
    if pixels.shape[:len(lead)] != lead or pixels.shape[-1] != 3:
        raise ValueError(f'pixels must have shape {tuple(lead)} + (..., 3) to match '
                         f'cam2lidar {tuple(cam2lidar.shape)}, got {tuple(pixels.shape)}')
    sample_shape = pixels.shape[len(lead):-1]
    flat = pixels.reshape(lead + (-1, 3))
    ones = flat.new_ones(flat.shape[:-1] + (1, ))
    flat = torch.cat((flat, ones), dim=-1)  # (B, N, S, 4)
    if img_aug_matrix is not None:
        _check_4x4('img_aug_matrix', img_aug_matrix)
        flat = flat @ torch.linalg.inv(img_aug_matrix).transpose(-1, -2)
    depth = flat[..., 2:3]
    flat = torch.cat((flat[..., :2] * depth, depth, ones), dim=-1)
    cam_to_lidar = cam2lidar @ torch.linalg.inv(intrinsics_to_4x4(cam2img))
    if lidar_aug_matrix is not None:
        _check_4x4('lidar_aug_matrix', lidar_aug_matrix)
        cam_to_lidar = lidar_aug_matrix.unsqueeze(-3) @ cam_to_lidar
    points = flat @ cam_to_lidar.transpose(-1, -2)
    return points[..., :3].reshape(lead + sample_shape + (3, ))


def frustum_to_lidar(frustum: Tensor,
                     cam2img: Tensor,
                     cam2lidar: Tensor,
                     img_aug_matrix: Optional[Tensor] = None,
                     lidar_aug_matrix: Optional[Tensor] = None) -> Tensor:
    """Map a camera frustum into the (augmented) LiDAR frame of every camera.

    Equivalent of BEVFusion's ``BaseViewTransform.get_geometry`` (with
    ``post_rots/post_trans`` = ``img_aug_matrix[..., :3, :3] / [..., :3, 3]``
    and ``extra_rots/extra_trans`` from ``lidar_aug_matrix``), batched over
    B and N without loops. See :func:`unproject_pixels_to_lidar`.

    Args:
        frustum: (D, h, w, 3) from :func:`create_frustum`: ``(u, v, d)``
            augmented-image pixels and metres.
        cam2img: (B, N, 3|4, 3|4) intrinsics.
        cam2lidar: (B, N, 4, 4) camera -> LiDAR (``inv(lidar2cam)``).
        img_aug_matrix: Optional (B, N, 4, 4) original -> augmented pixels.
        lidar_aug_matrix: Optional (B, 4, 4) original -> augmented LiDAR.

    Returns:
        Tensor: (B, N, D, h, w, 3) frustum points in the LiDAR frame, metres.
    """
    if frustum.dim() != 4 or frustum.shape[-1] != 3:
        raise ValueError(f'frustum must have shape (D, h, w, 3), got {tuple(frustum.shape)}')
    lead = cam2lidar.shape[:-2]
    pixels = frustum.expand(lead + frustum.shape)
    return unproject_pixels_to_lidar(pixels, cam2img, cam2lidar, img_aug_matrix,
                                     lidar_aug_matrix)


def project_points_to_image(points: Tensor, lidar2img: Tensor,
                            eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Project LiDAR points to pixels (and depths) of one or many cameras.

    ``q = lidar2img @ [p, 1]``, ``uv = q[:2] / max(q[2], eps)``,
    ``depth = q[2]``. Points behind the camera (``depth <= 0``) get
    meaningless ``uv``: filter them with ``depth``.

    Example:
        >>> P = torch.eye(4)  # identity intrinsics and extrinsics
        >>> uv, d = project_points_to_image(torch.tensor([[2., 4., 2.]]), P)
        >>> uv.tolist(), d.tolist()
        ([[1.0, 2.0]], [2.0])

    Args:
        points: (..., P, 3) points in the LiDAR frame, metres.
        lidar2img: (..., 4, 4) projections; leading dims broadcast with the
            points' (e.g. points (P, 3) and lidar2img (N, 4, 4) -> (N, P)).
        eps: Lower clamp of the depth used as divisor.

    Returns:
        tuple[Tensor, Tensor]: uv (..., P, 2) pixels (column, row), and
        depth (..., P) metres along the optical axis.
    """
    if points.shape[-1] != 3:
        raise ValueError(f'points must have shape (..., P, 3), got {tuple(points.shape)}')
    _check_4x4('lidar2img', lidar2img)
    rot = lidar2img[..., :3, :3]
    trans = lidar2img[..., :3, 3]
    cam = points @ rot.transpose(-1, -2) + trans.unsqueeze(-2)
    depth = cam[..., 2]
    uv = cam[..., :2] / depth.clamp_min(eps).unsqueeze(-1)
    return uv, depth


def render_depth_map_from_points(points: Tensor,
                                 lidar2img: Tensor,
                                 image_size: Sequence[int],
                                 stride: int = 1,
                                 batch_idx: Optional[Tensor] = None,
                                 min_depth: float = 1e-3,
                                 max_depth: Optional[float] = None) -> Tensor:
    """Sparse depth map: the minimum depth of the points hitting each cell.

    A point at pixel ``(u, v)`` lands in cell
    ``(floor((v + 0.5) / stride), floor((u + 0.5) / stride))`` (pixel-centre
    convention, see the module docstring); points outside the image or with
    depth outside ``(min_depth, max_depth]`` are ignored. Cells are reduced
    with ``scatter_reduce(amin)``, cells without a point hold 0. Not
    differentiable (a target builder).

    Example:
        >>> P = torch.eye(4)
        >>> pts = torch.tensor([[2., 2., 2.], [1., 1., 1.]])  # both hit pixel (1, 1)
        >>> render_depth_map_from_points(pts, P[None], (3, 3))[0, 1, 1].item()
        1.0

    Args:
        points: (P, 3) points in the LiDAR frame (metres); packed over the
            batch when ``batch_idx`` is given.
        lidar2img: (N, 4, 4), or (B, N, 4, 4) with ``batch_idx``; include
            the image (and LiDAR) augmentation, see :func:`compose_lidar2img`.
        image_size: ``(H, W)`` of the image the projections refer to, pixels.
        stride: Cell size in pixels; ``H`` and ``W`` must be divisible by it.
        batch_idx: Optional (P,) long batch index of each point.
        min_depth: Points with depth ``<= min_depth`` (metres) are ignored.
        max_depth: Optional upper depth limit (metres, inclusive).

    Returns:
        Tensor: (N, H // stride, W // stride), or (B, N, H // stride,
        W // stride) with ``batch_idx``; depth in metres, 0 where empty.
    """
    img_h, img_w = (int(s) for s in image_size)
    if img_h % stride or img_w % stride:
        raise ValueError(f'image_size {(img_h, img_w)} must be divisible by stride {stride}')
    out_h, out_w = img_h // stride, img_w // stride
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f'points must have shape (P, 3), got {tuple(points.shape)}')
    _check_4x4('lidar2img', lidar2img)
    if batch_idx is None:
        if lidar2img.dim() != 3:
            raise ValueError('lidar2img must be (N, 4, 4) without batch_idx, got '
                             f'{tuple(lidar2img.shape)}')
        uv, depth = project_points_to_image(points, lidar2img)  # (N, P, 2), (N, P)
        batch_size, num_cams = 1, lidar2img.shape[0]
        cam_flat = torch.arange(num_cams, device=points.device).view(num_cams, 1)
    else:
        if lidar2img.dim() != 4 or batch_idx.shape != points.shape[:1]:
            raise ValueError('with batch_idx (P,), lidar2img must be (B, N, 4, 4); got '
                             f'batch_idx {tuple(batch_idx.shape)}, lidar2img '
                             f'{tuple(lidar2img.shape)}')
        batch_size, num_cams = lidar2img.shape[:2]
        # Project all points into all B * N cameras, then keep, for each
        # point, the cameras of its own sample (memory B * N * P).
        uv, depth = project_points_to_image(points, lidar2img.reshape(-1, 4, 4))
        point_ids = torch.arange(points.shape[0], device=points.device)
        uv = uv.view(batch_size, num_cams, -1, 2)[batch_idx, :, point_ids].transpose(0, 1)
        depth = depth.view(batch_size, num_cams, -1)[batch_idx, :, point_ids].transpose(0, 1)
        cam_flat = (batch_idx.view(1, -1) * num_cams
                    + torch.arange(num_cams, device=points.device).view(num_cams, 1))
    cols = torch.floor((uv[..., 0] + 0.5) / stride)
    rows = torch.floor((uv[..., 1] + 0.5) / stride)
    valid = (depth > min_depth) & (cols >= 0) & (cols < out_w) & (rows >= 0) & (rows < out_h)
    if max_depth is not None:
        valid &= depth <= max_depth
    flat_idx = (cam_flat * out_h + rows.long()) * out_w + cols.long()
    depth_map = torch.full((batch_size * num_cams * out_h * out_w, ), float('inf'),
                           dtype=points.dtype, device=points.device)
    depth_map.scatter_reduce_(0, flat_idx[valid], depth[valid].detach(), reduce='amin')
    depth_map = torch.where(torch.isinf(depth_map), torch.zeros_like(depth_map), depth_map)
    if batch_idx is None:
        return depth_map.view(num_cams, out_h, out_w)
    return depth_map.view(batch_size, num_cams, out_h, out_w)
