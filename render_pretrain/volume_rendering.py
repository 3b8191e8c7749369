"""NeRF-style volume rendering along rays sampled at fixed bins (pure PyTorch).

Small pure functions, one step of the maths each (the nerfacc split):

* :func:`alpha_from_density`: ``alpha_i = 1 - exp(-relu(sigma_i) * delta_i)``
* :func:`transmittance_from_alpha`: ``T_i = prod_{j < i} (1 - alpha_j)``
* :func:`weights_from_alpha`: ``w_i = T_i * alpha_i``
* :func:`composite_along_rays`: ``sum_i w_i * v_i``

and two renderers built from them: :func:`render_depth_bins` (perspective
rays through the LSS depth bins, NS-MAE) and :func:`render_bev_height`
(vertical rays through the BEV height bins, top-down).

Layout: the bins of a ray lie along one dimension ``bin_dim`` of the
density tensor (last by default). A per-bin value with ``C`` channels has
the density's shape with a channel dim inserted right AFTER ``bin_dim``:
density (..., D) -> colour (..., D, C); density (B, D, h, w) with
``bin_dim=1`` -> colour (B, D, C, h, w). Composited values replace the bin
dim by ``C``: (..., C) and (B, C, h, w) respectively, i.e. an image.
"""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'alpha_from_density', 'transmittance_from_alpha', 'weights_from_alpha',
    'composite_along_rays', 'bin_deltas', 'render_depth_bins', 'render_bev_height',
    'split_density_color', 'bin_centres'
]

#: Length given to the last, open interval of a ray (metres): the ray ends
#: there, so its weights sum to 1 whenever the last density is positive.
OPEN_INTERVAL = 1e10


def _norm_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f'bin_dim {dim} out of range for a {ndim}-d tensor')
    return dim % ndim


def alpha_from_density(sigma: Tensor, deltas: Tensor) -> Tensor:
    """Opacity of each interval from its density.

    ``alpha = 1 - exp(-relu(sigma) * delta)`` (computed as ``-expm1``).
    Differentiable w.r.t. ``sigma`` (zero gradient where ``sigma < 0``) and
    ``deltas``.

    Example:
        >>> alpha_from_density(torch.tensor([0., 1., -2.]), torch.tensor([1., 2., 1.]))
        tensor([0.0000, 0.8647, 0.0000])

    Args:
        sigma: (...) densities, 1/metre (raw network output; negatives are
            clamped to 0).
        deltas: Interval lengths in metres, broadcastable to ``sigma``.

    Returns:
        Tensor: (...) alpha in [0, 1].
    """
    return -torch.expm1(-torch.relu(sigma) * deltas)


def transmittance_from_alpha(alpha: Tensor, dim: int = -1) -> Tensor:
    """Exclusive transmittance ``T_i = prod_{j < i} (1 - alpha_j)``, ``T_0 = 1``.

    Example:
        >>> transmittance_from_alpha(torch.tensor([0.3, 0.8, 0.8, 1.0]))
        tensor([1.0000, 0.7000, 0.1400, 0.0280])

    Args:
        alpha: (..., D, ...) opacities in [0, 1], bins along ``dim``.
        dim: The bin dimension.

    Returns:
        Tensor: Transmittance, same shape, in [0, 1]; differentiable.
    """
    dim = _norm_dim(dim, alpha.dim())
    survive = 1 - alpha
    first = torch.ones_like(survive.narrow(dim, 0, 1))
    shifted = torch.cat((first, survive.narrow(dim, 0, alpha.shape[dim] - 1)), dim=dim)
    return torch.cumprod(shifted, dim=dim)


def weights_from_alpha(alpha: Tensor, dim: int = -1) -> Tuple[Tensor, Tensor]:
    """Rendering weights ``w_i = T_i * alpha_i`` (probability the ray ends in bin i).

    Example:
        >>> w, t = weights_from_alpha(torch.tensor([0.3, 0.8, 0.8, 1.0]))
        >>> w
        tensor([0.3000, 0.5600, 0.1120, 0.0280])

    Args:
        alpha: (..., D, ...) opacities in [0, 1], bins along ``dim``.
        dim: The bin dimension.

    Returns:
        tuple[Tensor, Tensor]: weights and transmittance, both shaped like
        ``alpha``; ``sum_i w_i = 1 - prod_i (1 - alpha_i)`` (the opacity).
    """
    trans = transmittance_from_alpha(alpha, dim)
    return trans * alpha, trans


def composite_along_rays(weights: Tensor,
                         values: Optional[Tensor] = None,
                         dim: int = -1) -> Tensor:
    """Weighted sum of per-bin values along each ray: ``sum_i w_i v_i``.

    Args:
        weights: (..., D, ...) weights, bins along ``dim``.
        values: None (sum of weights: opacity), a tensor shaped like
            ``weights`` (a scalar per bin, e.g. depth, broadcasting allowed),
            or a tensor with a channel dim ``C`` right after ``dim`` (see the
            module docstring), e.g. colour (..., D, 3).
        dim: The bin dimension of ``weights``.

    Returns:
        Tensor: ``weights`` with ``dim`` removed for scalar values, or
        replaced by ``C`` for channelled values. Differentiable.

    Example:
        >>> w = torch.tensor([0.25, 0.75])
        >>> composite_along_rays(w, torch.tensor([2., 4.])).item()
        3.5
        >>> composite_along_rays(w, torch.tensor([[1., 0, 0], [0, 1, 0]])).tolist()
        [0.25, 0.75, 0.0]
    """
    dim = _norm_dim(dim, weights.dim())
    if values is None:
        return weights.sum(dim)
    if values.dim() == weights.dim():
        return (weights * values).sum(dim)
    if values.dim() != weights.dim() + 1:
        raise ValueError(f'values {tuple(values.shape)} must have the shape of weights '
                         f'{tuple(weights.shape)} or one channel dim after dim {dim}')
    return (weights.unsqueeze(dim + 1) * values).sum(dim)


def bin_deltas(bin_depths: Tensor, open_interval: float = OPEN_INTERVAL) -> Tensor:
    """Interval lengths ``delta_i = d_{i+1} - d_i`` with an open last interval.

    Example:
        >>> bin_deltas(torch.tensor([1., 1.5, 2.5]))
        tensor([5.0000e-01, 1.0000e+00, 1.0000e+10])

    Args:
        bin_depths: (D,) increasing sample depths along the ray, metres.
        open_interval: Length of the last interval, metres.

    Returns:
        Tensor: (D,) interval lengths, metres.
    """
    if bin_depths.dim() != 1 or bin_depths.numel() < 1:
        raise ValueError(f'bin_depths must be (D,) with D >= 1, got {tuple(bin_depths.shape)}')
    diffs = bin_depths[1:] - bin_depths[:-1]
    if (diffs <= 0).any():
        raise ValueError('bin_depths must be strictly increasing')
    # float16 cannot hold 1e10: an infinite interval would give 0 * inf = NaN
    # for a zero density, the largest finite value gives alpha 0 instead.
    open_interval = min(open_interval, torch.finfo(bin_depths.dtype).max)
    return torch.cat((diffs, diffs.new_full((1, ), open_interval)))


def render_depth_bins(density: Tensor,
                      color: Optional[Tensor],
                      bin_depths: Tensor,
                      background: Optional[Tensor] = None,
                      bin_dim: int = -1,
                      normalize_depth: bool = False,
                      open_interval: float = OPEN_INTERVAL) -> Dict[str, Tensor]:
    """Render colour, expected depth and opacity along rays through depth bins.

    With ``delta = bin_deltas(bin_depths)`` (last interval open):
    ``alpha_i = 1 - exp(-relu(sigma_i) delta_i)``, ``T_i = prod_{j<i}(1 -
    alpha_j)``, ``w_i = T_i alpha_i``; ``rgb = sum_i w_i c_i + (1 - O) bg``,
    ``depth = sum_i w_i d_i`` (divided by ``O`` if ``normalize_depth``),
    ``O = sum_i w_i``. With the open last interval, ``O = 1`` unless the last
    density is 0. Differentiable w.r.t. density and colour.

    Worked example (one ray, bins at 1, 2, 3 m, sigma = (0, ln 2, 5)):
    alpha = (0, 0.5, 1), T = (1, 1, 0.5), w = (0, 0.5, 0.5), depth = 2.5 m.

    Args:
        density: (..., D, ...) raw densities (1/metre), bins along ``bin_dim``.
        color: None, or per-bin colour with a channel dim right after
            ``bin_dim`` (e.g. (..., D, 3) or (B, D, 3, h, w)).
        bin_depths: (D,) increasing bin depths along the ray, metres.
        background: Optional colour blended with ``1 - opacity``: (C,), or
            broadcastable to the rendered colour.
        bin_dim: The bin dimension of ``density``.
        normalize_depth: Divide the expected depth by the opacity (depth of
            the rays that terminate; 0 where the opacity is 0).
        open_interval: Length of the last interval, metres.

    Returns:
        dict[str, Tensor]: ``rgb`` (density's shape with the bin dim replaced
        by C; only if ``color`` is given), ``depth`` and ``opacity``
        (density's shape without the bin dim; metres and [0, 1]) and
        ``weights`` (density's shape).
    """
    dim = _norm_dim(bin_dim, density.dim())
    num_bins = density.shape[dim]
    if bin_depths.shape != (num_bins, ):
        raise ValueError(f'bin_depths must be ({num_bins},) to match density '
                         f'{tuple(density.shape)} along dim {dim}, got {tuple(bin_depths.shape)}')
    view = [1] * density.dim()
    view[dim] = num_bins
    deltas = bin_deltas(bin_depths.to(density), open_interval).view(view)
    alpha = alpha_from_density(density, deltas)
    weights, _ = weights_from_alpha(alpha, dim)
    opacity = weights.sum(dim)
    depth = composite_along_rays(weights, bin_depths.to(density).view(view), dim)
    if normalize_depth:
        depth = depth / torch.where(opacity > 0, opacity, torch.ones_like(opacity))
    out = dict(depth=depth, opacity=opacity, weights=weights)
    if color is not None:
        expected = density.shape[:dim + 1] + color.shape[dim + 1:dim + 2] + density.shape[dim + 1:]
        if color.dim() != density.dim() + 1 or color.shape != expected:
            raise ValueError(f'color must have shape {tuple(expected)} (a channel dim after '
                             f'bin dim {dim} of density), got {tuple(color.shape)}')
        rgb = composite_along_rays(weights, color, dim)
        if background is not None:
            bg = background.to(rgb)
            if bg.dim() == 1:
                bg_view = [1] * rgb.dim()
                bg_view[dim] = bg.numel()
                bg = bg.view(bg_view)
            rgb = rgb + (1 - opacity.unsqueeze(dim)) * bg
        out['rgb'] = rgb
    return out


def render_bev_height(density: Tensor,
                      z_centres: Tensor,
                      z_dim: int = -3,
                      normalize: bool = False,
                      open_interval: float = OPEN_INTERVAL) -> Dict[str, Tensor]:
    """Render the expected first-hit height of vertical rays cast from the top.

    The ray of a BEV cell enters at the highest bin and goes down: bins are
    visited in order of decreasing ``z_centres``, with sample depths
    ``t_i = z_top - z_i`` (``z_top = max(z_centres)``) and the lowest
    interval open. ``depth = sum_i w_i t_i`` (distance below the top bin
    centre) and ``height = z_top - depth`` (the LiDAR-frame z of the first
    hit, metres); with ``normalize`` both refer to terminating rays only.

    Worked example: z_centres = (-1, 0, 1) m, densities with alpha 1 at
    z = 0 and 0 above: the ray passes z = 1, stops at z = 0: height 0 m,
    depth 1 m.

    Args:
        density: (B, Z, Y, X) raw densities per height bin (any ``(..., Z,
            ...)`` with the height bins along ``z_dim``), 1/metre.
        z_centres: (Z,) strictly increasing bin-centre heights, metres.
        z_dim: The height dimension of ``density``.
        normalize: Normalise by the opacity (see :func:`render_depth_bins`).
        open_interval: Length of the last (lowest) interval, metres.

    Returns:
        dict[str, Tensor]: ``height`` and ``depth`` (metres) and ``opacity``
        shaped like ``density`` without ``z_dim`` (e.g. (B, Y, X)), and
        ``weights`` shaped like ``density`` (in the input's bin order).
    """
    dim = _norm_dim(z_dim, density.dim())
    if z_centres.dim() != 1 or z_centres.numel() != density.shape[dim]:
        raise ValueError(f'z_centres must be ({density.shape[dim]},) to match density '
                         f'{tuple(density.shape)} along dim {dim}, got {tuple(z_centres.shape)}')
    z_desc = z_centres.to(density).flip(0)
    z_top = z_desc[0]
    rendered = render_depth_bins(density.flip(dim), None, z_top - z_desc, bin_dim=dim,
                                 normalize_depth=normalize, open_interval=open_interval)
    depth = rendered['depth']
    height = z_top * (rendered['opacity'] if not normalize else 1) - depth
    if normalize:
        height = torch.where(rendered['opacity'] > 0, height, torch.zeros_like(height))
    return dict(height=height, depth=depth, opacity=rendered['opacity'],
                weights=rendered['weights'].flip(dim))


def split_density_color(features: Tensor, num_bins: int,
                        num_color_channels: int = 3) -> Tuple[Tensor, Tensor]:
    """Split a rendering conv output into per-bin density and colour, channel-blocked.

    Channel layout (documented contract with the conv that produces it):
    channels ``[0, D)`` are the densities of bins 0..D-1; channels
    ``[D + c * D, D + (c + 1) * D)`` are colour channel ``c`` of bins
    0..D-1. The released NS-MAE code reshapes a (B, D * 4, h, w) output to
    (B, D, 4, h, w), which interleaves densities and colours across bins;
    this layout keeps each quantity a contiguous block.

    Args:
        features: (B, D * (1 + C), h, w) conv output (any trailing spatial dims).
        num_bins: D, the number of depth bins.
        num_color_channels: C (3 for RGB).

    Example (NS-MAE perspective head, B*N images of h x w rays):
        >>> feats = torch.randn(6, 118 * 4, 32, 88)  # 1x1-conv output
        >>> density, color = split_density_color(feats, 118)
        >>> out = render_depth_bins(density, color.sigmoid(),
        ...                         torch.arange(1.0, 60.0, 0.5), bin_dim=1)
        >>> out['rgb'].shape, out['depth'].shape
        (torch.Size([6, 3, 32, 88]), torch.Size([6, 32, 88]))

    Returns:
        tuple[Tensor, Tensor]: density (B, D, h, w) and colour
        (B, D, C, h, w) (raw, no activation applied), views of ``features``
        where possible.
    """
    expected = num_bins * (1 + num_color_channels)
    if features.dim() < 2 or features.shape[1] != expected:
        raise ValueError(f'features must have {expected} = D * (1 + C) channels '
                         f'(D={num_bins}, C={num_color_channels}), got {tuple(features.shape)}')
    density = features[:, :num_bins]
    color = features[:, num_bins:].unflatten(1, (num_color_channels, num_bins)).transpose(1, 2)
    return density, color


def bin_centres(lower: float, upper: float, num: int,
                device: Optional[torch.device] = None,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """Centres of ``num`` equal bins covering ``[lower, upper]`` (metres).

    Example:
        >>> bin_centres(-5.0, 3.0, 4)
        tensor([-4., -2.,  0.,  2.])
    """
    step = (upper - lower) / num
    return lower + step * (torch.arange(num, device=device, dtype=dtype) + 0.5)
