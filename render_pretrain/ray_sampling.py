"""Where to put samples along rays: AABB collider, stratified and importance sampling.

All functions work on packed rays: R rays in a flat leading dimension (the
caller keeps each ray's batch / camera index, see
:mod:`render_pretrain.ray_generation`). Distances ``t`` are metres measured
along UNIT ray directions, so a sample sits at ``origin + t * direction``
and ``t`` is the ray distance (not the camera z-depth).

Sample positions are metric (lidar/ego frame); the field maps them to the
volume's normalised coordinates with
:func:`render_pretrain.interpolation.normalize_points_to_aabb` (the scene
box of the collider is the volume's box).

None of the functions edits its inputs in place, and sample positions carry
no gradient (they are detached), as in NeRF/NeuS.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'intersect_rays_aabb',
    'sample_uniform',
    'sample_pdf',
    'merge_sorted_samples',
    'points_along_rays',
]


def intersect_rays_aabb(origins: Tensor,
                        directions: Tensor,
                        aabb: Tensor,
                        near_plane: float = 1.0) -> Tuple[Tensor, Tensor, Tensor]:
    """Clip rays to an axis-aligned box with the slab method, and a near plane.

    For each axis ``a``: ``t_a1 = (min_a - o_a) / d_a``, ``t_a2 = (max_a - o_a) / d_a``;
    ``t_enter = max_a min(t_a1, t_a2)``, ``t_exit = min_a max(t_a1, t_a2)``.
    Then ``near = max(t_enter, near_plane)``, ``far = t_exit`` and the ray is
    valid when ``far > near``. A zero direction component is handled as an
    infinite slab (the ray is inside it iff the origin is).

    Invalid rays (missing the box, or with the box entirely closer than the
    near plane) get ``near = far = near_plane``, so everything computed from
    them stays finite (zero-length intervals).

    Not differentiable (used for sample placement only).

    Args:
        origins (Tensor): Ray origins (R, 3), metres.
        directions (Tensor): Ray directions (R, 3), unit norm (non-unit works,
            ``t`` is then in units of the direction's length).
        aabb (Tensor): Box (6,) or per-ray (R, 6) ordered
            (x_min, y_min, z_min, x_max, y_max, z_max), metres, same frame.
        near_plane (float): Smallest allowed ``t`` in metres.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``near`` (R,), ``far`` (R,) in metres
        and ``valid`` (R,) bool.

    Example:
        >>> o = torch.tensor([[0., 0., 0.], [0., 0., 0.]])
        >>> d = torch.tensor([[1., 0., 0.], [0., 0., -1.]])
        >>> intersect_rays_aabb(o, d, torch.tensor([-4., -4., -1., 4., 4., 1.]))
        (tensor([1., 1.]), tensor([4., 1.]), tensor([ True, False]))
    """
    if origins.shape[-1] != 3 or directions.shape != origins.shape:
        raise ValueError(f'origins and directions must both be (R, 3), got '
                         f'{tuple(origins.shape)} and {tuple(directions.shape)}')
    if aabb.shape[-1] != 6:
        raise ValueError(f'aabb must be (6,) or (R, 6), got shape {tuple(aabb.shape)}')
    origins, directions = origins.detach(), directions.detach()
    aabb = aabb.detach().to(origins)
    lo, hi = aabb[..., :3], aabb[..., 3:]
    parallel = directions == 0
    safe_dir = torch.where(parallel, torch.ones_like(directions), directions)
    t1 = (lo - origins) / safe_dir
    t2 = (hi - origins) / safe_dir
    t_min = torch.minimum(t1, t2)
    t_max = torch.maximum(t1, t2)
    inside_slab = (origins >= lo) & (origins <= hi)
    inf = torch.full_like(t_min, float('inf'))
    # Parallel axis: unbounded if the origin lies in the slab, empty otherwise.
    t_min = torch.where(parallel, torch.where(inside_slab, -inf, inf), t_min)
    t_max = torch.where(parallel, torch.where(inside_slab, inf, -inf), t_max)
    t_enter = t_min.amax(dim=-1)
    t_exit = t_max.amin(dim=-1)
    near = t_enter.clamp(min=near_plane)
    valid = t_exit > near
    near_fill = torch.full_like(near, near_plane)
    return (torch.where(valid, near, near_fill), torch.where(valid, t_exit, near_fill), valid)


def sample_uniform(near: Tensor,
                   far: Tensor,
                   num_samples: int,
                   jitter: bool = False,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Stratified samples between ``near`` and ``far``.

    ``t_i = near + (far - near) * (i + u_i) / N`` with ``u_i = 0.5`` (bin
    centres) without jitter, or ``u_i ~ U[0, 1)`` drawn from ``generator``
    with jitter. The samples are sorted and spaced by about
    ``(far - near) / N``.

    Args:
        near (Tensor): Start distance (R,), metres.
        far (Tensor): End distance (R,), metres.
        num_samples (int): N, samples per ray.
        jitter (bool): Randomise the position inside each bin.
        generator (torch.Generator, optional): Source of the jitter.

    Returns:
        Tensor: Sample distances (R, N), metres, sorted, no gradient.

    Example:
        >>> sample_uniform(torch.tensor([1.]), torch.tensor([5.]), 4)
        tensor([[1.5000, 2.5000, 3.5000, 4.5000]])
    """
    if num_samples < 1:
        raise ValueError(f'num_samples must be >= 1, got {num_samples}')
    near, far = near.detach(), far.detach()
    steps = torch.arange(num_samples, device=near.device, dtype=near.dtype)
    if jitter:
        offsets = torch.rand(near.shape + (num_samples,), generator=generator,
                             device=near.device, dtype=near.dtype)
    else:
        offsets = near.new_full((1,) * near.dim() + (num_samples,), 0.5)
    frac = (steps + offsets) / num_samples
    return near.unsqueeze(-1) + (far - near).unsqueeze(-1) * frac


def sample_pdf(bins: Tensor,
               weights: Tensor,
               num_samples: int,
               deterministic: bool = True,
               generator: Optional[torch.Generator] = None,
               eps: float = 1e-5) -> Tensor:
    """Inverse-CDF sampling of a piecewise-constant pdf along each ray.

    ``pdf_j = (w_j + eps) / sum_k (w_k + eps)`` on bin ``[b_j, b_{j+1}]``,
    ``cdf = [0, cumsum(pdf)]``; a quantile ``u`` maps to
    ``b_j + (u - cdf_j) / pdf_j * (b_{j+1} - b_j)`` where ``cdf_j <= u < cdf_{j+1}``.
    Quantiles are ``(k + 0.5) / M`` (deterministic) or ``U[0, 1)`` from
    ``generator``. The ``eps`` keeps rays with all-zero weights sampled
    uniformly. Neither ``bins`` nor ``weights`` is modified.

    Not differentiable: the returned samples are detached.

    Args:
        bins (Tensor): Bin edges (R, N + 1), sorted along the ray, metres.
        weights (Tensor): Non-negative bin weights (R, N).
        num_samples (int): M, samples to draw per ray.
        deterministic (bool): Use evenly spaced quantiles instead of random ones.
        generator (torch.Generator, optional): Source of random quantiles.
        eps (float): Weight floor added to every bin.

    Returns:
        Tensor: Samples (R, M), sorted along each ray, within [b_0, b_N].

    Example:
        >>> bins = torch.tensor([[0., 1., 2., 3.]])
        >>> sample_pdf(bins, torch.tensor([[0., 1., 0.]]), 2, eps=0.)
        tensor([[1.2500, 1.7500]])
    """
    if bins.dim() != 2 or weights.dim() != 2 or bins.shape[1] != weights.shape[1] + 1 \
            or bins.shape[0] != weights.shape[0]:
        raise ValueError(f'bins must be (R, N + 1) and weights (R, N), got '
                         f'{tuple(bins.shape)} and {tuple(weights.shape)}')
    bins, weights = bins.detach(), weights.detach()
    padded = weights.clamp(min=0) + eps
    pdf = padded / padded.sum(dim=-1, keepdim=True).clamp(min=torch.finfo(padded.dtype).tiny)
    cdf = torch.cat([pdf.new_zeros(pdf.shape[0], 1), pdf.cumsum(dim=-1)], dim=-1)
    cdf = torch.minimum(cdf, cdf.new_ones(()))
    if deterministic:
        steps = torch.arange(num_samples, device=bins.device, dtype=bins.dtype)
        quantiles = (steps + 0.5) / num_samples
        quantiles = quantiles.expand(bins.shape[0], num_samples).contiguous()
    else:
        quantiles = torch.rand(bins.shape[0], num_samples, generator=generator,
                               device=bins.device, dtype=bins.dtype)
    num_bins = weights.shape[1]
    above = torch.searchsorted(cdf, quantiles, right=True).clamp(1, num_bins)
    below = above - 1
    cdf_below = cdf.gather(1, below)
    cdf_above = cdf.gather(1, above)
    bin_below = bins.gather(1, below)
    bin_above = bins.gather(1, above)
    denom = cdf_above - cdf_below
    denom = torch.where(denom < 1e-12, torch.ones_like(denom), denom)
    frac = ((quantiles - cdf_below) / denom).clamp(0, 1)
    samples = bin_below + frac * (bin_above - bin_below)
    return samples.sort(dim=-1).values


def merge_sorted_samples(t_a: Tensor, t_b: Tensor) -> Tuple[Tensor, Tensor]:
    """Merge two sets of samples per ray into one sorted set.

    Args:
        t_a (Tensor): Samples (R, N_a), metres.
        t_b (Tensor): Samples (R, N_b), metres.

    Returns:
        tuple[Tensor, Tensor]: Sorted samples (R, N_a + N_b) and the int64
        permutation (R, N_a + N_b) into ``cat([t_a, t_b], -1)``, to reorder
        values that travel with the samples (e.g. SDF values) with
        ``values.gather(-1, order)``.

    Example:
        >>> merge_sorted_samples(torch.tensor([[1., 3.]]), torch.tensor([[2.]]))
        (tensor([[1., 2., 3.]]), tensor([[0, 2, 1]]))
    """
    if t_a.shape[:-1] != t_b.shape[:-1]:
        raise ValueError(f'sample sets must share the ray dims, got {tuple(t_a.shape)} '
                         f'and {tuple(t_b.shape)}')
    merged = torch.cat([t_a, t_b], dim=-1)
    merged, order = merged.sort(dim=-1, stable=True)
    return merged, order


def points_along_rays(origins: Tensor, directions: Tensor, t: Tensor) -> Tensor:
    """Positions of samples: ``origin + t * direction``.

    Args:
        origins (Tensor): Ray origins (R, 3), metres.
        directions (Tensor): Unit ray directions (R, 3).
        t (Tensor): Distances (R, S), metres.

    Returns:
        Tensor: Sample positions (R, S, 3), metres, frame of the rays.
    """
    return origins.unsqueeze(-2) + t.unsqueeze(-1) * directions.unsqueeze(-2)
