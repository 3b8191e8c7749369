"""NeuS render head: SDF field decoded from a voxel volume, rendered along camera rays."""
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmdet3d.registry import MODELS
from render_pretrain.ray_generation import (CameraRays, generate_pixel_rays, optical_axes,
                                            ray_distance_to_z_depth, sample_camera_rays)
from render_pretrain.ray_sampling import intersect_rays_aabb
from render_pretrain.reconstruction_losses import masked_l1
from render_pretrain.sdf_field import SDFField
from render_pretrain.sdf_rendering import NeuSSampling, eikonal_loss, render_neus

LOSS_KEYS = ('rgb', 'depth', 'eikonal')
#: Stabiliser of the opacity-normalised depth (the released ``DepthRenderer``'s).
DEPTH_EPS = 1e-10
RENDER_KEYS = ('rgb', 'depth', 'opacity', 'weights', 'alpha', 'sdf', 't_mid', 'deltas',
               'gradients')


@MODELS.register_module()
class MIM4DNeuSRenderHead(BaseModule):
    """Render RGB and depth of camera rays from a (predicted) feature volume.

    Glue around the core: rays from
    :func:`render_pretrain.ray_generation.sample_camera_rays` (LiDAR rays
    with ``min_depth < range < max_depth`` first, padded with random pixels
    below the sky rows), the AABB collider with a near plane
    (:func:`render_pretrain.ray_sampling.intersect_rays_aabb`), the NeuS
    renderer (:func:`render_pretrain.sdf_rendering.render_neus`: uniform +
    importance samples with up-sampling) and the field
    :class:`render_pretrain.sdf_field.SDFField` (the volume tiles the scene
    box ``aabb``).

    Render units (``scene_scale``): as in the released MIM4D / UniPAD code
    (``norm_scene=True``), rays are rendered in coordinates normalised to the
    scene box, ``x_render = scene_scale * x_metres`` with ``scene_scale =
    1 / max|aabb|`` (1 / 54 for the paper box): the field's box, the ray
    origins, the samples, the near plane, the SDF and its gradient are in
    render units, so the NeuS constants (the initial inverse std
    ``s = exp(10 * field.init_variance)``, the up-sampling ``base_inv_s``)
    and the eikonal target are per render unit, and the depth L1 is taken on
    render-unit distances (metres / 54). ``scene_scale=1.0`` renders in
    metres (every constant then per metre). Inputs and the returned
    ``depth`` / ``far`` / ``t_mid`` / ``deltas`` stay in metres.

    Losses (each times its weight in ``loss_weights``): L1 of the rendered
    RGB (in [0, 1]) against the pixel colour over valid rays, L1 of the
    rendered ray distance against the LiDAR ray distance over valid LiDAR
    rays, both in render units (``scene_scale * metres``), and optionally the
    eikonal term over the samples of valid rays. All are 0 (finite) when no
    ray qualifies.

    Args:
        in_channels (int): Volume channels.
        aabb (Sequence[float]): Scene box (x_min, y_min, z_min, x_max, y_max,
            z_max), metres, the volume's ``point_cloud_range``.
        scene_scale (float, optional): Render units per metre. None (the
            released setting): ``1 / max|aabb|``; 1.0: render in metres.
        field (dict): Extra :class:`SDFField` arguments (hidden_dim,
            num_layers, geo_feat_dim, ...); its ``aabb`` is set here.
        rays_per_camera (int): Ray budget per camera (paper: 512-2048).
        lidar_fraction (float): Largest share of the budget for LiDAR rays.
        min_depth (float): LiDAR points need a horizontal range
            ``hypot(x, y)`` (in the frame of the points given to
            :meth:`sample_rays`) above this, metres (3, as released).
        max_depth (float): ... and below this, metres (50).
        horizon_fraction (float): Top fraction of image rows treated as sky
            (no pixel rays there).
        near_plane (float): Near plane of the samples, metres (1).
        num_uniform (int): Uniform samples per ray (72).
        num_importance (int): Importance samples per ray (24).
        num_upsample_steps (int): NeuS up-sampling steps (1).
        base_inv_s (float): Inverse std of the first up-sampling step, per
            render unit (64, as NeuS / the release). The four sampling
            defaults are :class:`render_pretrain.sdf_rendering.NeuSSampling`'s,
            as :func:`render_neus`'s.
        loss_weights (dict): ``rgb`` (10), ``depth`` (10, on render-unit
            distances), ``eikonal`` (0).
        normalize_depth (bool): Rendered depth ``sum(w t) / (sum(w) + 1e-10)``
            (True, the released ``DepthRenderer``: the mean distance of the
            weight profile) or ``sum(w t)`` (False: biased towards 0 where
            the opacity is below 1, e.g. at the soft initial profile).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 in_channels: int = 32,
                 aabb: Sequence[float] = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
                 scene_scale: Optional[float] = None,
                 field: Optional[dict] = None,
                 rays_per_camera: int = 512,
                 lidar_fraction: float = 1.0,
                 min_depth: float = 3.0,
                 max_depth: float = 50.0,
                 horizon_fraction: float = 0.3,
                 near_plane: float = 1.0,
                 num_uniform: int = NeuSSampling.num_uniform,
                 num_importance: int = NeuSSampling.num_importance,
                 num_upsample_steps: int = NeuSSampling.num_upsample_steps,
                 base_inv_s: float = NeuSSampling.base_inv_s,
                 loss_weights: Optional[dict] = None,
                 normalize_depth: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(aabb) != 6:
            raise ValueError(f'aabb must have 6 values, got {tuple(aabb)}')
        if scene_scale is None:
            scene_scale = 1.0 / max(abs(float(v)) for v in aabb)
        if not scene_scale > 0:
            raise ValueError(f'scene_scale must be > 0 (render units per metre), got '
                             f'{scene_scale}')
        self.scene_scale = float(scene_scale)
        self.aabb = tuple(float(v) for v in aabb)
        field = dict(field or {})
        if 'aabb' in field:
            raise KeyError('render_head.field must not set aabb: it is render_head.aabb '
                           '(metres) times scene_scale')
        self.field = SDFField(in_channels=in_channels,
                              aabb=tuple(v * self.scene_scale for v in self.aabb), **field)
        self.rays_per_camera = int(rays_per_camera)
        self.lidar_fraction = float(lidar_fraction)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.horizon_fraction = float(horizon_fraction)
        self.near_plane = float(near_plane)
        self.num_uniform, self.num_importance = int(num_uniform), int(num_importance)
        self.num_upsample_steps = int(num_upsample_steps)
        self.base_inv_s = float(base_inv_s)
        weights = dict(rgb=10.0, depth=10.0, eikonal=0.0)
        weights.update(loss_weights or {})
        unknown = set(weights) - set(LOSS_KEYS)
        if unknown:
            raise KeyError(f'unknown loss_weights keys {sorted(unknown)}; expected {LOSS_KEYS}')
        self.loss_weights = weights
        self.normalize_depth = bool(normalize_depth)

    def sample_rays(self, points: Tensor, point_batch_idx: Tensor, lidar2img: Tensor,
                    image_size: Sequence[int],
                    generator: Optional[torch.Generator]) -> CameraRays:
        """Draw the training rays of the target cameras.

        LiDAR points count when ``min_depth < hypot(x, y) < max_depth``
        (horizontal range in the frame of ``points``, as the released ray
        sampler's ``close_radius`` / ``far_radius``); no further range limit
        is put on the ray distance from the camera.

        Args:
            points (Tensor): (P, 3) LiDAR points of all samples, packed, in
                the target frame, metres.
            point_batch_idx (Tensor): (P,) int64 sample of each point.
            lidar2img (Tensor): (B, N_cam, 4, 4) target frame -> augmented
                image pixels.
            image_size (Sequence[int]): (H, W) of the valid image, pixels.
            generator (torch.Generator, optional): Randomness source.

        Returns:
            CameraRays: packed rays (origins/directions in the target frame).
        """
        horizontal = points[:, :2].norm(dim=-1)
        keep = (horizontal > self.min_depth) & (horizontal < self.max_depth)
        return sample_camera_rays(points[keep], lidar2img, image_size, self.rays_per_camera,
                                  generator=generator,
                                  point_batch_idx=None if point_batch_idx is None
                                  else point_batch_idx[keep],
                                  lidar_fraction=self.lidar_fraction,
                                  min_depth=0.0, max_depth=float('inf'),
                                  horizon_fraction=self.horizon_fraction)

    def forward(self, volume: Tensor, origins: Tensor, directions: Tensor, batch_idx: Tensor,
                generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """Render packed rays through the field decoded from ``volume``.

        Args:
            volume (Tensor): (B, C, Z, Y, X) volume over ``aabb``.
            origins (Tensor): (R, 3) ray origins, volume frame, metres.
            directions (Tensor): (R, 3) unit directions.
            batch_idx (Tensor): (R,) int64 sample of each ray.
            generator (torch.Generator, optional): Jitter of the uniform
                samples (training only; None: no jitter).

        Returns:
            dict[str, Tensor]: :func:`render_neus` outputs (``rgb`` (R, 3),
            ``depth`` (R,) ray distance in metres (divided by the opacity
            with ``normalize_depth``), ``t_mid`` / ``deltas``
            (R, S) metres, ``sdf`` (R, S) and ``gradients`` (R, S, 3) in
            render units, ...) plus ``valid`` (R,) bool (ray hits the box
            beyond the near plane) and ``far`` (R,) box exit distance, metres.
        """
        scale = self.scene_scale
        origins = origins * scale  # render units; directions stay unit vectors
        near, far, valid = intersect_rays_aabb(origins, directions, self.field.aabb,
                                               self.near_plane * scale)
        # All rays at once, no ray chunks: in training autograd keeps every chunk's
        # graph until the backward pass, so chunks would not lower the peak memory
        # (paper config: 3072 rays x 96 samples); render_image renders 1 / stride^2
        # of the pixels without grad, whose activations are freed as it goes.
        sdf_fn, field_fn = self.field.callbacks(volume, batch_idx)
        out = render_neus(origins, directions, near, far, field_fn, self.field.inv_s(),
                          sdf_fn=sdf_fn, num_uniform=self.num_uniform,
                          num_importance=self.num_importance,
                          num_upsample_steps=self.num_upsample_steps,
                          base_inv_s=self.base_inv_s, jitter=generator is not None,
                          generator=generator, valid=valid)
        if self.normalize_depth:
            out['depth'] = out['depth'] / (out['opacity'] + DEPTH_EPS)
        for key in ('depth', 't_mid', 'deltas'):
            out[key] = out[key] / scale
        out.update(valid=valid, far=far / scale)
        return out

    def loss(self, rendered: Dict[str, Tensor], rays: CameraRays,
             rgb_target: Tensor) -> Dict[str, Tensor]:
        """Weighted L1 RGB / depth (and eikonal) losses of one target frame.

        ``loss_depth = w_depth * mean |scene_scale * (depth - target)|`` over
        the valid LiDAR rays (render units, as released).

        Args:
            rendered (dict): Output of :meth:`forward`.
            rays (CameraRays): The rendered rays.
            rgb_target (Tensor): (R, 3) pixel colours in [0, 1].

        Returns:
            dict[str, Tensor]: ``loss_rgb``, ``loss_depth`` (and
            ``loss_eikonal`` when its weight is positive), weighted scalars.
        """
        valid = rendered['valid']
        depth_valid = valid & rays.has_depth & (rays.depth <= rendered['far'])
        losses = dict(
            loss_rgb=masked_l1(rendered['rgb'], rgb_target, valid.unsqueeze(-1))
            * self.loss_weights['rgb'],
            loss_depth=masked_l1(rendered['depth'] * self.scene_scale,
                                 rays.depth * self.scene_scale, depth_valid)
            * self.loss_weights['depth'])
        if self.loss_weights['eikonal'] > 0:
            mask = valid.unsqueeze(1).expand(rendered['gradients'].shape[:2])
            losses['loss_eikonal'] = (eikonal_loss(rendered['gradients'], mask)
                                      * self.loss_weights['eikonal'])
        return losses

    def render_image(self, volume: Tensor, lidar2img: Tensor, image_size: Sequence[int],
                     stride: int) -> Dict[str, Tensor]:
        """Render every ``stride``-th pixel of every camera (visualisation).

        Args:
            volume (Tensor): (B, C, Z, Y, X) volume over ``aabb``.
            lidar2img (Tensor): (B, N_cam, 4, 4) volume frame -> image pixels.
            image_size (Sequence[int]): (H, W), divisible by ``stride``.
            stride (int): Pixel step; pixel (u, v) = centre of each
                ``stride x stride`` cell.

        Returns:
            dict[str, Tensor]: ``rgb`` (B, N_cam, 3, H / stride, W / stride)
            in [0, 1] and ``depth`` (B, N_cam, H / stride, W / stride) depth
            along the optical axis, metres.
        """
        img_h, img_w = (int(v) for v in image_size)
        bsz, num_cams = lidar2img.shape[:2]
        out_h, out_w = img_h // stride, img_w // stride
        vs, us = torch.meshgrid(
            torch.arange(out_h, device=volume.device, dtype=volume.dtype) * stride
            + (stride - 1) / 2,
            torch.arange(out_w, device=volume.device, dtype=volume.dtype) * stride
            + (stride - 1) / 2, indexing='ij')
        pixels = torch.stack([us, vs], dim=-1).view(1, 1, -1, 2).expand(bsz, num_cams, -1, 2)
        origins, directions = generate_pixel_rays(pixels, lidar2img)
        batch_idx = torch.arange(bsz, device=volume.device).view(-1, 1, 1).expand(
            bsz, num_cams, out_h * out_w).reshape(-1)
        rendered = self(volume, origins.reshape(-1, 3), directions.reshape(-1, 3), batch_idx)
        axes = optical_axes(lidar2img).unsqueeze(2).expand_as(directions).reshape(-1, 3)
        z_depth = ray_distance_to_z_depth(rendered['depth'], directions.reshape(-1, 3), axes)
        return dict(
            rgb=rendered['rgb'].view(bsz, num_cams, out_h, out_w, 3).permute(0, 1, 4, 2, 3),
            depth=z_depth.view(bsz, num_cams, out_h, out_w))
