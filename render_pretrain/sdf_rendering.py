"""NeuS volume rendering of a signed distance field (pure functions).

Follows NeuS (Wang et al., NeurIPS 2021, "NeuS: Learning Neural Implicit
Surfaces by Volume Rendering for Multi-view Reconstruction"; upstream file
``models/renderer.py``), as used by UniPAD/MIM4D, rewritten for packed rays:

1. :func:`sample_uniform` gives N_u stratified samples in [near, far]
   (the AABB collider of :mod:`render_pretrain.ray_sampling`).
2. Up-sampling (:func:`upsample_neus`): the SDF is evaluated at the samples
   (no gradient), weights are computed with a FIXED inverse std
   ``s_i = base_inv_s * 2 ** i`` for step i (64, 128, ... as NeuS), and
   N_imp / steps samples are drawn by inverse-CDF sampling per step.
3. The field is evaluated at the mid-point of every section
   [t_i, t_{i+1}] (the last section has the coarse spacing as length), and
   alpha follows NeuS's discrete opacity (:func:`alpha_from_sdf`) with the
   LEARNED inverse std ``s``; weights, colour and depth use the compositing
   helpers of :mod:`render_pretrain.volume_rendering`.

The renderer never sees a network: it takes callbacks (nerfacc style)

* ``sdf_fn(points) -> sdf``: points (R, S, 3) metric, sdf (R, S) metres;
  called without gradient (up-sampling only).
* ``field_fn(points, directions) -> (sdf, rgb, gradients)``: points
  (R, S, 3), unit directions (R, S, 3); sdf (R, S), rgb (R, S, 3) in
  [0, 1], gradients (R, S, 3) = d sdf / d points, differentiable w.r.t.
  the field's parameters when the eikonal / cos term should train (e.g.
  autograd with ``create_graph=True``, or analytic as in
  :class:`render_pretrain.sdf_field.SDFField`).

Rays keep their order through the callbacks, so a callback that needs each
ray's batch item (to pick its feature volume) closes over the packed
``batch_idx`` of the rays (see :class:`render_pretrain.sdf_field.SDFField`).
All distances are metres along unit directions (ray distance, not z-depth).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .ray_sampling import merge_sorted_samples, points_along_rays, sample_pdf, sample_uniform
from .reconstruction_losses import masked_mse
from .volume_rendering import composite_along_rays, weights_from_alpha

__all__ = [
    'alpha_from_sdf',
    'upsample_weights',
    'upsample_neus',
    'section_midpoints',
    'render_neus',
    'eikonal_loss',
    'NeuSSampling',
]

SdfFn = Callable[[Tensor], Tensor]
FieldFn = Callable[[Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]

#: Stabiliser of NeuS's alpha ratio (the upstream value).
ALPHA_EPS = 1e-5


@dataclass(frozen=True)
class NeuSSampling:
    """The samples per ray of :func:`render_neus`, MIM4D's released values.

    Said once here: the defaults of :func:`render_neus`, :func:`upsample_neus`
    and ``MIM4DNeuSRenderHead`` (whose config keys are these names) are these
    class attributes.

    Attributes:
        num_uniform (int): Stratified samples per ray, N_u (72).
        num_importance (int): Importance samples per ray, N_imp (24).
        num_upsample_steps (int): NeuS up-sampling steps (1).
        base_inv_s (float): Fixed inverse std ``s`` of the first up-sampling
            step, per distance unit (64, as NeuS).
    """

    num_uniform: int = 72
    num_importance: int = 24
    num_upsample_steps: int = 1
    base_inv_s: float = 64.0


def _dot3(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(-1)`` for (..., 3) vectors, component-wise (a reduction
    over a last dim of 3 is several times slower on CPU)."""
    ax, ay, az = a.unbind(-1)
    bx, by, bz = b.unbind(-1)
    return ax * bx + ay * by + az * bz


def alpha_from_sdf(sdf: Tensor,
                   cos: Tensor,
                   deltas: Tensor,
                   inv_s: Tensor,
                   cos_anneal_ratio: float = 1.0) -> Tensor:
    """NeuS discrete opacity of each section from the SDF at its mid-point.

    With ``Phi_s(x) = sigmoid(s x)``, the section's end-point SDFs are
    estimated from the mid-point value and the directional derivative
    ``c = cos``: ``f_prev = f - c delta / 2``, ``f_next = f + c delta / 2``,
    and

    ``alpha = clamp((Phi_s(f_prev) - Phi_s(f_next) + eps) / (Phi_s(f_prev) + eps), 0, 1)``.

    ``c`` is annealed as in NeuS: ``c = -(relu(0.5 - 0.5 cos) (1 - r) +
    relu(-cos) r)`` with ``r = cos_anneal_ratio`` (r = 1: ``c = min(cos, 0)``,
    so only entering a surface adds opacity). ``eps = 1e-5`` as upstream.

    Differentiable w.r.t. ``sdf``, ``cos`` (hence the SDF gradient) and ``inv_s``.

    Worked example: a plane crossed head-on (cos = -1) with sections of 1 m
    and s = 10: the section centred on the surface (f = 0) has
    f_prev = 0.5, f_next = -0.5, alpha = (0.9933 - 0.0067) / 0.9933 = 0.993.

    Args:
        sdf (Tensor): (R, S) SDF at the section mid-points, metres.
        cos (Tensor): (R, S) ``grad sdf . direction`` at the mid-points.
        deltas (Tensor): (R, S) section lengths, metres.
        inv_s (Tensor): Scalar (or broadcastable) inverse standard deviation
            ``s`` of the logistic density, 1/metre.
        cos_anneal_ratio (float): r in [0, 1].

    Returns:
        Tensor: (R, S) alpha in [0, 1].
    """
    iter_cos = -(torch.relu(-cos * 0.5 + 0.5) * (1.0 - cos_anneal_ratio)
                 + torch.relu(-cos) * cos_anneal_ratio)
    half_step = iter_cos * deltas * 0.5
    prev_cdf = torch.sigmoid((sdf - half_step) * inv_s)
    next_cdf = torch.sigmoid((sdf + half_step) * inv_s)
    alpha = (prev_cdf - next_cdf + ALPHA_EPS) / (prev_cdf + ALPHA_EPS)
    return alpha.clamp(0.0, 1.0)


def upsample_weights(t: Tensor, sdf: Tensor, inv_s: float) -> Tensor:
    """NeuS up-sampling weights of the sections between consecutive samples.

    Uses finite differences instead of the SDF gradient: for section
    [t_i, t_{i+1}], ``f_mid = (f_i + f_{i+1}) / 2`` and the slope
    ``c_i = (f_{i+1} - f_i) / (t_{i+1} - t_i)``, replaced by
    ``min(c_{i-1}, c_i)`` (``c_{-1} = 0``) and clamped to [-1e3, 0];
    alpha follows :func:`alpha_from_sdf` (with ``cos = c``) and the weights
    ``w_i = alpha_i prod_{j<i} (1 - alpha_j + 1e-7)``.

    Not differentiable (sample placement).

    Args:
        t (Tensor): (R, S) sorted sample distances, metres.
        sdf (Tensor): (R, S) SDF at the samples, metres.
        inv_s (float): Fixed inverse std for this step (NeuS: 64 * 2 ** i).

    Returns:
        Tensor: (R, S - 1) non-negative weights of the sections.
    """
    t, sdf = t.detach(), sdf.detach()
    dt = t[:, 1:] - t[:, :-1]
    mid_sdf = 0.5 * (sdf[:, 1:] + sdf[:, :-1])
    slope = (sdf[:, 1:] - sdf[:, :-1]) / (dt + 1e-5)
    prev_slope = torch.cat([slope.new_zeros(slope.shape[0], 1), slope[:, :-1]], dim=1)
    slope = torch.minimum(slope, prev_slope).clamp(-1e3, 0.0)
    prev_cdf = torch.sigmoid((mid_sdf - slope * dt * 0.5) * inv_s)
    next_cdf = torch.sigmoid((mid_sdf + slope * dt * 0.5) * inv_s)
    alpha = (prev_cdf - next_cdf + ALPHA_EPS) / (prev_cdf + ALPHA_EPS)
    survive = torch.cat([alpha.new_ones(alpha.shape[0], 1), 1.0 - alpha + 1e-7], dim=1)
    return alpha * survive.cumprod(dim=1)[:, :-1]


def upsample_neus(origins: Tensor,
                  directions: Tensor,
                  t: Tensor,
                  sdf_fn: SdfFn,
                  num_importance: int,
                  num_steps: int = NeuSSampling.num_upsample_steps,
                  base_inv_s: float = NeuSSampling.base_inv_s) -> Tensor:
    """Hierarchical NeuS up-sampling: add importance samples near the surface.

    Step i (of ``num_steps``) computes :func:`upsample_weights` with
    ``s = base_inv_s * 2 ** i``, draws its share of ``num_importance``
    samples with :func:`sample_pdf` (deterministic quantiles), merges them
    into the sorted samples and evaluates the SDF only at the new samples.
    Runs without gradient.

    Args:
        origins (Tensor): (R, 3) ray origins, metres.
        directions (Tensor): (R, 3) unit directions.
        t (Tensor): (R, S) sorted coarse samples, metres.
        sdf_fn (Callable): ``sdf_fn(points (R, S', 3)) -> (R, S')``.
        num_importance (int): Total samples to add, N_imp.
        num_steps (int): Up-sampling steps (the samples are split evenly,
            the first steps taking the remainder).
        base_inv_s (float): Inverse std of the first step.

    Returns:
        Tensor: (R, S + N_imp) sorted samples, metres.
    """
    if num_importance < 0 or num_steps < 1:
        raise ValueError(f'need num_importance >= 0 and num_steps >= 1, got '
                         f'{num_importance} and {num_steps}')
    per_step = [num_importance // num_steps + (1 if i < num_importance % num_steps else 0)
                for i in range(num_steps)]
    with torch.no_grad():
        t = t.detach()
        sdf = sdf_fn(points_along_rays(origins, directions, t))
        for step, count in enumerate(per_step):
            if count == 0:
                continue
            weights = upsample_weights(t, sdf, base_inv_s * 2 ** step)
            t_new = sample_pdf(t, weights, count, deterministic=True)
            t, order = merge_sorted_samples(t, t_new)
            if step < num_steps - 1:
                sdf_new = sdf_fn(points_along_rays(origins, directions, t_new))
                sdf = torch.cat([sdf, sdf_new], dim=1).gather(1, order)
    return t


def section_midpoints(t: Tensor, last_delta: Tensor) -> Tuple[Tensor, Tensor]:
    """Sections [t_i, t_{i+1}] of sorted samples, the last one of length ``last_delta``.

    Args:
        t (Tensor): (R, S) sorted samples, metres.
        last_delta (Tensor): (R,) length of the last section, metres.

    Returns:
        tuple[Tensor, Tensor]: mid-points (R, S) and lengths (R, S), metres.
    """
    deltas = torch.cat([t[:, 1:] - t[:, :-1], last_delta.view(-1, 1).to(t)], dim=1)
    return t + 0.5 * deltas, deltas


def render_neus(origins: Tensor,
                directions: Tensor,
                near: Tensor,
                far: Tensor,
                field_fn: FieldFn,
                inv_s: Tensor,
                sdf_fn: Optional[SdfFn] = None,
                num_uniform: int = NeuSSampling.num_uniform,
                num_importance: int = NeuSSampling.num_importance,
                num_upsample_steps: int = NeuSSampling.num_upsample_steps,
                base_inv_s: float = NeuSSampling.base_inv_s,
                cos_anneal_ratio: float = 1.0,
                jitter: bool = False,
                generator: Optional[torch.Generator] = None,
                valid: Optional[Tensor] = None,
                background: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """Render colour and depth of packed rays through an SDF field (NeuS).

    ``w_i = alpha_i prod_{j<i}(1 - alpha_j)`` with NeuS alpha
    (:func:`alpha_from_sdf`), ``rgb = sum_i w_i c_i (+ (1 - O) bg)``,
    ``depth = sum_i w_i m_i`` over the section mid-points ``m_i`` (ray
    distance in metres, NOT normalised by the opacity ``O = sum_i w_i``).
    Rays with ``valid`` False (e.g. missing the scene box) get alpha 0:
    zero colour / depth / opacity and no gradient, all finite.

    Differentiable w.r.t. everything ``field_fn`` returns and ``inv_s``;
    the sample positions are not.

    Args:
        origins (Tensor): (R, 3) ray origins, metres (lidar/ego frame).
        directions (Tensor): (R, 3) unit directions.
        near (Tensor): (R,) start of the samples, metres.
        far (Tensor): (R,) end of the samples, metres.
        field_fn (Callable): ``(points (R, S, 3), dirs (R, S, 3)) -> (sdf (R, S),
            rgb (R, S, 3), gradients (R, S, 3))``.
        inv_s (Tensor): Scalar learned inverse std ``s`` (1/metre).
        sdf_fn (Callable, optional): ``points (R, S, 3) -> sdf (R, S)`` for
            up-sampling; required when ``num_importance > 0``.
        num_uniform (int): Stratified samples per ray (72 in MIM4D).
        num_importance (int): Importance samples per ray (24 in MIM4D).
        num_upsample_steps (int): Up-sampling steps.
        base_inv_s (float): Fixed ``s`` of the first up-sampling step.
        cos_anneal_ratio (float): NeuS cos annealing ratio in [0, 1].
        jitter (bool): Jitter the stratified samples (training).
        generator (torch.Generator, optional): Source of the jitter.
        valid (Tensor, optional): (R,) bool, rays to render.
        background (Tensor, optional): (3,) or (R, 3) colour blended with
            ``1 - O``.

    Returns:
        dict[str, Tensor]: ``rgb`` (R, 3), ``depth`` (R,) metres, ``opacity``
        (R,) in [0, 1], ``weights`` / ``alpha`` / ``sdf`` / ``t_mid`` / ``deltas``
        (R, S) and ``gradients`` (R, S, 3) with S = N_u + N_imp, for losses
        such as :func:`eikonal_loss`.
    """
    if num_importance > 0 and sdf_fn is None:
        raise ValueError('sdf_fn is required for importance sampling (num_importance > 0)')
    t = sample_uniform(near, far, num_uniform, jitter=jitter, generator=generator)
    if num_importance > 0:
        t = upsample_neus(origins, directions, t, sdf_fn, num_importance, num_upsample_steps,
                          base_inv_s)
    coarse_step = (far - near).detach() / num_uniform
    t_mid, deltas = section_midpoints(t, coarse_step)
    points = points_along_rays(origins, directions, t_mid)
    dirs = directions.unsqueeze(1).expand_as(points)
    sdf, rgb, gradients = field_fn(points, dirs)
    cos = _dot3(gradients, dirs)
    alpha = alpha_from_sdf(sdf, cos, deltas, inv_s, cos_anneal_ratio)
    if valid is not None:
        alpha = alpha * valid.to(alpha.dtype).unsqueeze(1)
    weights, _ = weights_from_alpha(alpha)
    opacity = composite_along_rays(weights)
    color = composite_along_rays(weights, rgb)
    if background is not None:
        color = color + (1.0 - opacity.unsqueeze(-1)) * background.to(color)
    return dict(rgb=color, depth=composite_along_rays(weights, t_mid), opacity=opacity,
                weights=weights, alpha=alpha, sdf=sdf, t_mid=t_mid, deltas=deltas,
                gradients=gradients)


def eikonal_loss(gradients: Tensor, mask: Optional[Tensor] = None) -> Tensor:
    """Eikonal regulariser ``mean((|grad f| - 1) ** 2)`` over the valid samples.

    Args:
        gradients (Tensor): (..., 3) SDF gradients (unit-free, metres/metre).
        mask (Tensor, optional): (...) bool, samples to include.

    Returns:
        Tensor: Scalar loss; 0 (finite, connected to the graph) when nothing
        is valid.

    Example:
        >>> eikonal_loss(torch.tensor([[0., 0., 2.], [0.6, 0.8, 0.]]))
        tensor(0.5000)
    """
    # sqrt of a clamped square: no NaN gradient for a zero vector.
    norm = _dot3(gradients, gradients).clamp_min(1e-24).sqrt()
    return masked_mse(norm, torch.ones_like(norm), mask)
