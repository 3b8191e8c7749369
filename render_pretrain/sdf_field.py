"""NeuS-style SDF field decoded from a voxel feature volume (MIM4D render head).

The field owns only the small networks; the feature volume (B, C, Z, Y, X)
is passed at forward time (the output of the temporal predictor or of the
view transform):

* features: :func:`render_pretrain.interpolation.trilinear_interpolate_packed`
  of the volume at each sample (gather-based, so the eikonal term can be
  differentiated twice), the volume tiling the scene box ``aabb``.
* SDF MLP: ``[feature, normalised position] -> [sdf (1), geometry feature
  (G)]``, ``num_layers`` linear layers of width ``hidden_dim`` with
  Softplus(beta=100) (smooth, so second derivatives exist), as NeuS's
  ``SDFNetwork`` (MIM4D: hidden 16, 5 layers, G = 16).
* colour MLP: ``[feature, geometry feature, view direction, SDF gradient] ->
  rgb`` with ReLU hidden layers and a sigmoid output in [0, 1] (NeuS's
  ``RenderingNetwork`` in "idr" mode).
* :class:`InverseStd`: NeuS's ``SingleVarianceNetwork``, ``s = exp(10 v)``.

Implementation note (exact, not an approximation): trilinear interpolation is
linear, so the first linear layer of each MLP commutes with it:
``W [interp(V)(p); rest] + b = interp(W_V V)(p) + W_r rest + b``. The field
therefore projects the volume once per call with the first layers' feature
columns (C -> hidden channels, a 1x1x1 convolution) and interpolates the
projected volumes: the SDF path (the one differentiated twice) carries
``hidden_dim`` channels instead of C, and the colour path interpolates
without a gradient graph w.r.t. the points. The parameters are exactly those
of the plain MLPs on ``[feature, ...]`` inputs.

Units: points are metres in the volume's (lidar/ego) frame; the SDF is in
metres and its gradient is taken w.r.t. the metric points (so the eikonal
target |grad| = 1 is isotropic even for a flat, wide box).
"""
import math
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .interpolation import normalize_points_to_aabb, trilinear_interpolate_packed

__all__ = ['InverseStd', 'SDFField']


class InverseStd(nn.Module):
    """Learnable inverse standard deviation ``s`` of NeuS's logistic density.

    ``s = exp(scale * v)`` with one scalar parameter ``v`` (NeuS:
    ``SingleVarianceNetwork``, ``scale = 10``, ``v`` initialised to 0.3 so
    s starts at exp(3) ~ 20 / metre and grows as the surface sharpens).
    The value is clamped to [1e-6, 1e6] to keep the sigmoid finite.

    Args:
        init_value (float): Initial ``v``.
        scale (float): Multiplier inside the exponential.
    """

    def __init__(self, init_value: float = 0.3, scale: float = 10.0):
        super().__init__()
        self.scale = scale
        self.variance = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self) -> Tensor:
        """Return ``s`` as a 0-d tensor (1/metre)."""
        return torch.exp(self.variance * self.scale).clamp(1e-6, 1e6)


class SDFField(nn.Module):
    """SDF + colour field decoded from a feature volume by trilinear interpolation.

    Args:
        in_channels (int): C, channels of the feature volume.
        aabb (Sequence[float]): Scene box tiled by the volume,
            (x_min, y_min, z_min, x_max, y_max, z_max) metres; stored as a
            non-persistent buffer.
        hidden_dim (int): Width of the SDF MLP.
        num_layers (int): Linear layers of the SDF MLP (>= 2).
        geo_feat_dim (int): G, geometry features passed to the colour MLP.
        color_hidden_dim (int): Width of the colour MLP.
        color_num_layers (int): Linear layers of the colour MLP (>= 2).
        use_position (bool): Also feed the normalised position (x, y, z) in
            [-1, 1] to the SDF MLP.
        geometric_init (bool): NeuS/SAL geometric initialisation: the
            position columns of the first layer and the hidden layers are
            drawn N(0, 2 / width), the feature columns of the first layer
            are zero and the last layer makes the initial SDF approximately
            ``|x_n| - init_radius`` in normalised box coordinates (an
            ellipsoid in metres). Needs ``use_position``. Off by default:
            MIM4D decodes from learned features.
        init_radius (float): Radius of the initial SDF (normalised units).
        align_corners (bool): Interpolation convention (see
            :mod:`render_pretrain.interpolation`); False means the volume's
            outer voxel edges are the box faces.
        init_variance (float): Initial ``v`` of :class:`InverseStd`.
    """

    def __init__(self,
                 in_channels: int = 32,
                 aabb: Sequence[float] = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
                 hidden_dim: int = 16,
                 num_layers: int = 5,
                 geo_feat_dim: int = 16,
                 color_hidden_dim: int = 16,
                 color_num_layers: int = 2,
                 use_position: bool = True,
                 geometric_init: bool = False,
                 init_radius: float = 0.5,
                 align_corners: bool = False,
                 init_variance: float = 0.3):
        super().__init__()
        if len(aabb) != 6 or any(aabb[i] >= aabb[i + 3] for i in range(3)):
            raise ValueError(f'aabb must be (x_min, y_min, z_min, x_max, y_max, z_max) with '
                             f'min < max, got {tuple(aabb)}')
        if num_layers < 2 or color_num_layers < 2:
            raise ValueError(f'num_layers and color_num_layers must be >= 2, got '
                             f'{num_layers} and {color_num_layers}')
        if geometric_init and not use_position:
            raise ValueError('geometric_init needs use_position=True')
        self.in_channels = in_channels
        self.use_position = use_position
        self.align_corners = align_corners
        self.geo_feat_dim = geo_feat_dim
        self.register_buffer('aabb', torch.tensor(aabb, dtype=torch.float32), persistent=False)

        sdf_in = in_channels + (3 if use_position else 0)
        dims = [sdf_in] + [hidden_dim] * (num_layers - 1) + [1 + geo_feat_dim]
        self.sdf_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.sdf_activation = nn.Softplus(beta=100)

        color_in = in_channels + geo_feat_dim + 3 + 3
        cdims = [color_in] + [color_hidden_dim] * (color_num_layers - 1) + [3]
        layers = []
        for i, (a, b) in enumerate(zip(cdims[:-1], cdims[1:])):
            layers.append(nn.Linear(a, b))
            layers.append(nn.ReLU() if i < len(cdims) - 2 else nn.Sigmoid())
        self.color_net = nn.Sequential(*layers)
        self.deviation = InverseStd(init_variance)
        if geometric_init:
            self._geometric_init(init_radius)

    def _geometric_init(self, radius: float) -> None:
        last = len(self.sdf_layers) - 1
        for i, layer in enumerate(self.sdf_layers):
            out_dim, in_dim = layer.weight.shape
            with torch.no_grad():
                if i == last:
                    nn.init.normal_(layer.weight, mean=math.sqrt(math.pi) / math.sqrt(in_dim),
                                    std=1e-4)
                    nn.init.constant_(layer.bias, -radius)
                else:
                    nn.init.normal_(layer.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
                    nn.init.zeros_(layer.bias)
                    if i == 0:
                        layer.weight[:, :self.in_channels] = 0.0

    def inv_s(self) -> Tensor:
        """Current inverse std ``s`` (0-d tensor, 1/metre)."""
        return self.deviation()

    def _check(self, points: Tensor, volume: Tensor, batch_idx: Tensor) -> None:
        if volume.dim() != 5 or volume.shape[1] != self.in_channels:
            raise ValueError(f'volume must be (B, {self.in_channels}, Z, Y, X), '
                             f'got {tuple(volume.shape)}')
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f'points must be (R, S, 3) metres, got {tuple(points.shape)}')
        if batch_idx.shape != points.shape[:1]:
            raise ValueError(f'batch_idx must be (R,) = {tuple(points.shape[:1])}, '
                             f'got {tuple(batch_idx.shape)}')

    @staticmethod
    def _project(volume: Tensor, weight: Tensor) -> Tensor:
        """(B, C, Z, Y, X) x (O, C) -> (B, O, Z, Y, X): a 1x1x1 convolution."""
        bsz, channels = volume.shape[:2]
        out = weight.to(volume) @ volume.reshape(bsz, channels, -1)
        return out.view((bsz, weight.shape[0]) + volume.shape[2:])

    def project_volume(self, volume: Tensor) -> Tuple[Tensor, Tensor]:
        """Apply the feature columns of both MLPs' first layers to the volume.

        Args:
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.

        Returns:
            tuple[Tensor, Tensor]: SDF volume (B, hidden_dim, Z, Y, X) and
            colour volume (B, color_hidden_dim, Z, Y, X) (no bias added).
        """
        if volume.dim() != 5 or volume.shape[1] != self.in_channels:
            raise ValueError(f'volume must be (B, {self.in_channels}, Z, Y, X), '
                             f'got {tuple(volume.shape)}')
        first_color = self.color_net[0]
        return (self._project(volume, self.sdf_layers[0].weight[:, :self.in_channels]),
                self._project(volume, first_color.weight[:, :self.in_channels]))

    def _interpolate(self, volume: Tensor, normalized: Tensor, batch_idx: Tensor) -> Tensor:
        num_rays, num_samples = normalized.shape[:2]
        sample_batch = batch_idx.view(-1, 1).expand(num_rays, num_samples).reshape(-1)
        out = trilinear_interpolate_packed(volume, normalized.reshape(-1, 3), sample_batch,
                                           self.align_corners)
        return out.view(num_rays, num_samples, -1)

    def _normalize(self, points: Tensor, grid_size) -> Tensor:
        return normalize_points_to_aabb(points, self.aabb, grid_size, self.align_corners)

    def _geometry(self, points: Tensor, sdf_volume: Tensor, batch_idx: Tensor):
        """sdf (R, S) and geometry features (R, S, G) from the projected SDF volume."""
        normalized = self._normalize(points, sdf_volume.shape[2:])
        first = self.sdf_layers[0]
        h = self._interpolate(sdf_volume, normalized, batch_idx) + first.bias
        if self.use_position:
            h = h + normalized.to(h) @ first.weight[:, self.in_channels:].t()
        for layer in self.sdf_layers[1:]:
            h = layer(self.sdf_activation(h))
        return h[..., 0], h[..., 1:]

    def _sdf(self, points: Tensor, sdf_volume: Tensor, batch_idx: Tensor) -> Tensor:
        return self._geometry(points, sdf_volume, batch_idx)[0]

    def _field(self, points: Tensor, directions: Tensor, sdf_volume: Tensor,
               color_volume: Tensor, batch_idx: Tensor, create_graph: Optional[bool] = None):
        grad_mode = torch.is_grad_enabled()
        if create_graph is None:
            create_graph = grad_mode
        with torch.enable_grad():
            pts = points.detach().requires_grad_(True)
            sdf, geo = self._geometry(pts, sdf_volume, batch_idx)
            (gradients,) = torch.autograd.grad(sdf, pts, torch.ones_like(sdf),
                                               create_graph=create_graph)
        if not grad_mode:
            sdf, geo = sdf.detach(), geo.detach()
        first = self.color_net[0]
        normalized = self._normalize(points.detach(), color_volume.shape[2:])
        h = self._interpolate(color_volume, normalized, batch_idx) + first.bias
        rest = torch.cat([geo, directions.to(geo), gradients.to(geo)], dim=-1)
        h = h + rest @ first.weight[:, self.in_channels:].t()
        rgb = self.color_net[1:](h)
        return sdf, rgb, gradients

    def sdf(self, points: Tensor, volume: Tensor, batch_idx: Tensor) -> Tensor:
        """SDF at points (no colour, no gradient graph needed).

        Args:
            points (Tensor): (R, S, 3) metric points, lidar/ego frame.
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.
            batch_idx (Tensor): (R,) int64 batch item of each ray.

        Returns:
            Tensor: (R, S) signed distance, metres.
        """
        self._check(points, volume, batch_idx)
        sdf_volume = self._project(volume, self.sdf_layers[0].weight[:, :self.in_channels])
        return self._sdf(points, sdf_volume, batch_idx)

    def forward(self, points: Tensor, directions: Tensor, volume: Tensor, batch_idx: Tensor,
                create_graph: Optional[bool] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """SDF, colour and SDF gradient at points.

        The gradient ``d sdf / d points`` comes from ``torch.autograd.grad``
        with ``create_graph`` (default: whether grad mode is on), so losses on
        the colour (which sees the gradient), on the NeuS cos term and the
        eikonal term train the SDF MLP and the volume.

        Args:
            points (Tensor): (R, S, 3) metric points, lidar/ego frame.
            directions (Tensor): (R, S, 3) unit view directions.
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.
            batch_idx (Tensor): (R,) int64 batch item of each ray.
            create_graph (bool, optional): Keep the gradient differentiable.

        Returns:
            tuple[Tensor, Tensor, Tensor]: sdf (R, S) metres, rgb (R, S, 3)
            in [0, 1], gradients (R, S, 3).
        """
        self._check(points, volume, batch_idx)
        sdf_volume, color_volume = self.project_volume(volume)
        return self._field(points, directions, sdf_volume, color_volume, batch_idx, create_graph)

    def callbacks(self, volume: Tensor, batch_idx: Tensor):
        """Bind a volume and the rays' batch index for :func:`render_neus`.

        The volume is projected once (see the module docstring) and shared
        by both callbacks, so make new callbacks for every forward pass (the
        projection is part of that pass's autograd graph).

        Args:
            volume (Tensor): (B, C, Z, Y, X) feature volume.
            batch_idx (Tensor): (R,) int64 batch item of each ray.

        Returns:
            tuple[Callable, Callable]: ``sdf_fn(points)`` and
            ``field_fn(points, directions)``.
        """
        sdf_volume, color_volume = self.project_volume(volume)

        def sdf_fn(points: Tensor) -> Tensor:
            self._check(points, volume, batch_idx)
            return self._sdf(points, sdf_volume, batch_idx)

        def field_fn(points: Tensor, directions: Tensor):
            self._check(points, volume, batch_idx)
            return self._field(points, directions, sdf_volume, color_volume, batch_idx)

        return sdf_fn, field_fn
