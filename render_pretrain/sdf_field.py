"""NeuS-style SDF field decoded from a voxel feature volume (MIM4D render head).

The field owns only the small networks; the feature volume (B, C, Z, Y, X)
is passed at forward time (the output of the temporal predictor or of the
view transform):

* features: trilinear interpolation of the volume at each sample (the values
  of ``F.grid_sample``, zeros padding), the volume tiling the scene box
  ``aabb``.
* SDF MLP: ``[feature, normalised position] -> [sdf (1), geometry feature
  (G)]``, ``num_layers`` linear layers of width ``hidden_dim`` with
  Softplus(beta=100) (smooth, so second derivatives exist), as NeuS's
  ``SDFNetwork`` (MIM4D: hidden 16, 5 layers, G = 16).
* colour MLP: ``[feature, geometry feature, view direction, SDF gradient] ->
  rgb`` with ReLU hidden layers and a sigmoid output in [0, 1] (NeuS's
  ``RenderingNetwork`` in "idr" mode).
* :class:`InverseStd`: NeuS's ``SingleVarianceNetwork``, ``s = exp(10 v)``.

Implementation notes (exact, not approximations):

* Trilinear interpolation is linear, so the first linear layer of each MLP
  commutes with it: ``W [interp(V)(p); rest] + b = interp(W_V V)(p) + W_r
  rest + b``. The field projects the volume once per call with both first
  layers' feature columns (C -> hidden and C -> colour hidden channels,
  1x1x1 convolutions) into a channel-last row table and interpolates that
  (:func:`render_pretrain.interpolation.interpolate_table`): H + H_c
  channels per sample instead of C. The parameters are exactly those of the
  plain MLPs on ``[feature, ...]`` inputs.
* The SDF gradient w.r.t. the sample points is analytic instead of
  ``torch.autograd.grad(create_graph=True)`` (:meth:`SDFField._sdf_and_gradient`):
  the reverse chain of the SDF MLP (``softplus' = sigmoid(beta x)``) gives
  ``d sdf / d h_0``, which is contracted with the interpolant's spatial
  derivatives (derivative corner weights) plus the position columns. It is
  written with ordinary tensor ops, and sample points carry no gradient,
  so it is an ordinary function of the volume and the parameters: the
  losses on the gradient (eikonal, NeuS cos, colour input) are trained by
  autograd with one backward pass instead of a double backward.

Units: points are metres in the volume's (lidar/ego) frame; the SDF is in
metres and its gradient is taken w.r.t. the metric points (so the eikonal
target |grad| = 1 is isotropic even for a flat, wide box).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .interpolation import (interpolate_table, normalize_points_to_aabb,
                            trilinear_corner_weights)

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

    def project_volume(self, volume: Tensor) -> Tensor:
        """Apply the feature columns of both MLPs' first layers to the volume.

        Args:
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.

        Returns:
            Tensor: Row table (B * Z * Y * X, H + H_c) of the projected
            channel-last volume (no bias added): the SDF MLP's H columns,
            then the colour MLP's H_c columns.
        """
        channels = self.in_channels
        if volume.dim() != 5 or volume.shape[1] != channels:
            raise ValueError(f'volume must be (B, {channels}, Z, Y, X), '
                             f'got {tuple(volume.shape)}')
        weight = torch.cat([self.sdf_layers[0].weight[:, :channels],
                            self.color_net[0].weight[:, :channels]]).to(volume)
        return volume.permute(0, 2, 3, 4, 1).reshape(-1, channels) @ weight.t()

    def _corners(self, points: Tensor, grid_size: Sequence[int], batch_idx: Tensor,
                 derivatives: bool, dtype: torch.dtype):
        """Normalised points (P, 3), corner rows (P, 8) and weights (K, P, 8)."""
        num_rays, num_samples = points.shape[:2]
        normalized = normalize_points_to_aabb(points.detach(), self.aabb, grid_size,
                                              self.align_corners).reshape(-1, 3).to(dtype)
        sample_batch = batch_idx.view(-1, 1).expand(num_rays, num_samples).reshape(-1)
        corner_idx, weights = trilinear_corner_weights(normalized, sample_batch, grid_size,
                                                       self.align_corners, derivatives)
        return normalized, corner_idx, weights

    def _points_scale(self, grid_size: Sequence[int], dtype: torch.dtype) -> Tensor:
        """(3,) d (normalised coordinate) / d (metric point), 1/metre, per axis (x, y, z)."""
        lo, hi = self.aabb[:3].to(dtype), self.aabb[3:].to(dtype)
        extent = hi - lo
        if self.align_corners:
            size_xyz = extent.new_tensor([grid_size[2], grid_size[1], grid_size[0]])
            extent = extent - extent / size_xyz
        return 2.0 / extent

    def _first_sdf_layer(self, sdf_features: Tensor, normalized: Tensor) -> Tensor:
        """``h_0`` (P, H): interpolated projected features + bias (+ position columns)."""
        first = self.sdf_layers[0]
        h = sdf_features + first.bias
        if self.use_position:
            h = h + normalized @ first.weight[:, self.in_channels:].t()
        return h

    def _sdf_mlp(self, h: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """The SDF MLP after its first layer: output (P, 1 + G) and pre-activations.

        Args:
            h (Tensor): (P, H) first layer output ``h_0``.

        Returns:
            tuple[Tensor, list[Tensor]]: ``[sdf, geometry features]`` (P, 1 + G)
            and the hidden pre-activations ``h_0 ... h_{L-2}``, each (P, H).
        """
        act = self.sdf_activation
        pre_activations = []
        for layer in self.sdf_layers[1:]:
            pre_activations.append(h)
            h = layer(F.softplus(h, act.beta, act.threshold))
        return h, pre_activations

    def _sdf_and_gradient(self, sdf_features: Tensor, feature_derivatives: Tensor,
                          normalized: Tensor, grid_size: Sequence[int]
                          ) -> Tuple[Tensor, Tensor]:
        """SDF MLP output and the analytic SDF gradient w.r.t. the metric points.

        With ``h_0 = interp(T)(n) + b_0 + W_p n`` (T the projected SDF
        table, n the normalised point), ``h_{k+1} = W_{k+1} softplus(h_k) +
        b_{k+1}`` and ``sdf = h_{L-1}[0]``, the chain rule gives the
        cotangent ``c = d sdf / d h_0`` backwards from
        ``c_{L-2} = W_{L-1}[0] * s_{L-2}``, ``c_k = (c_{k+1} W_{k+1}) * s_k``
        with the Softplus slope ``s_k = sigmoid(beta h_k)``, and
        ``d sdf / d n_a = c . (d interp(T) / d n_a) + c . W_p[:, a]``, times
        ``d n / d point`` (:meth:`_points_scale`). Only ordinary ops: the
        result is differentiable w.r.t. the table and the parameters, so a
        loss on it trains them with one backward pass (no double backward).
        Equal to ``torch.autograd.grad(sdf, points)``.

        Args:
            sdf_features (Tensor): (P, H) ``interp(T)(n)``.
            feature_derivatives (Tensor): (3, P, H) ``d interp(T) / d n``
                along x, y, z (:func:`interpolate_table`).
            normalized (Tensor): (P, 3) normalised points.
            grid_size (Sequence[int]): Volume size (Z, Y, X).

        Returns:
            tuple[Tensor, Tensor]: ``[sdf, geometry features]`` (P, 1 + G)
            and the gradient (P, 3) of the sdf w.r.t. the metric points.
        """
        out, pre_activations = self._sdf_mlp(self._first_sdf_layer(sdf_features, normalized))
        beta = self.sdf_activation.beta
        slopes = [torch.sigmoid(beta * h) for h in pre_activations]
        cotangent = self.sdf_layers[-1].weight[0] * slopes[-1]
        for layer, slope in zip(reversed(self.sdf_layers[1:-1]), reversed(slopes[:-1])):
            cotangent = (cotangent @ layer.weight) * slope
        grad_normalized = (feature_derivatives * cotangent).sum(-1).t()
        if self.use_position:
            grad_normalized = grad_normalized + cotangent @ self.sdf_layers[0].weight[
                :, self.in_channels:]
        return out, grad_normalized * self._points_scale(grid_size, grad_normalized.dtype)

    def _sdf_from_table(self, points: Tensor, table: Tensor, grid_size: Sequence[int],
                        batch_idx: Tensor) -> Tensor:
        """sdf (R, S) from the projected table (N, H + H_c)."""
        normalized, corner_idx, weights = self._corners(points, grid_size, batch_idx, False,
                                                        table.dtype)
        sdf_table = table[:, :self.sdf_layers[0].out_features]
        values, _ = interpolate_table(sdf_table, corner_idx, weights, 0)
        out, _ = self._sdf_mlp(self._first_sdf_layer(values, normalized))
        return out[:, 0].view(points.shape[:2])

    def _field(self, points: Tensor, directions: Tensor, table: Tensor,
               grid_size: Sequence[int], batch_idx: Tensor,
               create_graph: Optional[bool] = None):
        """sdf, rgb and the analytic SDF gradient (see :meth:`forward`)."""
        if create_graph is None:
            create_graph = torch.is_grad_enabled()
        num_rays, num_samples = points.shape[:2]
        hidden = self.sdf_layers[0].out_features
        normalized, corner_idx, weights = self._corners(points, grid_size, batch_idx, True,
                                                        table.dtype)
        # Values of all H + H_c columns, spatial derivatives of the H SDF columns.
        values, derivatives = interpolate_table(table, corner_idx, weights, hidden)
        sdf_values, color_values = values.split([hidden, values.shape[1] - hidden], dim=1)
        out, gradients = self._sdf_and_gradient(sdf_values, derivatives, normalized, grid_size)
        sdf, geo = out.split([1, out.shape[1] - 1], dim=1)
        if not create_graph:
            gradients = gradients.detach()
        first = self.color_net[0]
        rest = torch.cat([geo, directions.reshape(-1, 3).to(geo), gradients], dim=-1)
        h = color_values + first.bias + rest @ first.weight[:, self.in_channels:].t()
        rgb = self.color_net[1:](h)
        return (sdf.view(num_rays, num_samples), rgb.view(num_rays, num_samples, 3),
                gradients.view(num_rays, num_samples, 3))

    def sdf(self, points: Tensor, volume: Tensor, batch_idx: Tensor) -> Tensor:
        """SDF at points (no colour, no SDF gradient).

        Args:
            points (Tensor): (R, S, 3) metric points, lidar/ego frame.
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.
            batch_idx (Tensor): (R,) int64 batch item of each ray.

        Returns:
            Tensor: (R, S) signed distance, metres.
        """
        self._check(points, volume, batch_idx)
        return self._sdf_from_table(points, self.project_volume(volume), volume.shape[2:],
                                    batch_idx)

    def forward(self, points: Tensor, directions: Tensor, volume: Tensor, batch_idx: Tensor,
                create_graph: Optional[bool] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """SDF, colour and SDF gradient at points.

        The gradient ``d sdf / d points`` is computed analytically (the
        same value as ``torch.autograd.grad`` of the sdf w.r.t. the points):
        the interpolation's spatial derivatives
        (:func:`render_pretrain.interpolation.trilinear_corner_weights`),
        chained with the position columns and the reverse chain of the SDF
        MLP (:meth:`_sdf_and_gradient`). It is an ordinary differentiable function of
        the volume and the MLP parameters (the points are constants), so
        losses on the colour (which sees the gradient), on the NeuS cos term
        and the eikonal term train the SDF MLP and the volume with one
        backward pass, no double backward.

        Args:
            points (Tensor): (R, S, 3) metric points, lidar/ego frame (no
                gradient flows to them).
            directions (Tensor): (R, S, 3) unit view directions.
            volume (Tensor): (B, C, Z, Y, X) feature volume over ``aabb``.
            batch_idx (Tensor): (R,) int64 batch item of each ray.
            create_graph (bool, optional): Keep the gradient differentiable
                (default: whether grad mode is on); False detaches it, also
                as the colour MLP's input.

        Returns:
            tuple[Tensor, Tensor, Tensor]: sdf (R, S) metres, rgb (R, S, 3)
            in [0, 1], gradients (R, S, 3).
        """
        self._check(points, volume, batch_idx)
        return self._field(points, directions, self.project_volume(volume), volume.shape[2:],
                           batch_idx, create_graph)

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
        table = self.project_volume(volume)
        grid_size = volume.shape[2:]

        def sdf_fn(points: Tensor) -> Tensor:
            self._check(points, volume, batch_idx)
            return self._sdf_from_table(points, table, grid_size, batch_idx)

        def field_fn(points: Tensor, directions: Tensor):
            self._check(points, volume, batch_idx)
            return self._field(points, directions, table, grid_size, batch_idx)

        return sdf_fn, field_fn
