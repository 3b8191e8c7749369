"""Sparse-convolution weight layouts and grid axis orders.

Two storage layouts exist for a 3-D sparse convolution weight:

- ``spconv1``: spconv 1.x and mmcv's sparse ops (mmdet3d 0.x, the
  mit-han-lab BEVFusion release) store ``[k0, k1, k2, C_in, C_out]``;
- ``spconv2``: spconv 2.x (mmdet3d 1.x with spconv installed) stores
  ``[C_out, k0, k1, k2, C_in]``.

In both, the kernel axes ``k0, k1, k2`` follow the sparse tensor's own
spatial axis order: X, Y, Z for BEVFusion's sparse encoder (and ours),
Z, Y, X for mmdet3d's ``SparseEncoder`` (CenterPoint). A non-cubic kernel
such as ``conv_out`` (1, 1, 3) in X, Y, Z is (3, 1, 1) in Z, Y, X, so the
kernel axes must be permuted whenever the axis orders differ (for cubic
kernels the values still need the permutation: the kernel is reflected).

The layout of a checkpoint is decided from the tensor shapes and the known
channel counts (:func:`candidate_layouts`, :func:`decide_spconv_layout`),
never guessed: when the shapes fit both layouts the caller must declare it.
"""
from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from .errors import ConversionError

SPCONV1 = 'spconv1'
SPCONV2 = 'spconv2'
SPCONV_LAYOUTS = (SPCONV1, SPCONV2)
_ALIASES = {
    'spconv1': SPCONV1, 'spconv1.x': SPCONV1, 'mmcv': SPCONV1,
    'spconv2': SPCONV2, 'spconv2.x': SPCONV2,
}
SPCONV_LAYOUT_DOC = {
    SPCONV1: '[k0, k1, k2, in, out] (spconv 1.x / mmcv sparse ops)',
    SPCONV2: '[out, k0, k1, k2, in] (spconv 2.x)',
}
AXIS_ORDERS = ('xyz', 'zyx')


def normalise_spconv_layout(name: str) -> str:
    """Return the canonical layout name (``spconv1`` or ``spconv2``).

    Args:
        name (str): ``spconv1``, ``spconv1.x``, ``mmcv``, ``spconv2`` or
            ``spconv2.x`` (case-insensitive).

    Returns:
        str: ``'spconv1'`` or ``'spconv2'``.
    """
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ConversionError(
            f'unknown sparse-conv weight layout {name!r}; expected one of '
            f'{sorted(_ALIASES)}')
    return _ALIASES[key]


def to_spconv2(weight: Tensor, layout: str) -> Tensor:
    """Bring a sparse-conv weight to the spconv 2.x layout.

    Args:
        weight (Tensor): [k0, k1, k2, C_in, C_out] if ``layout`` is
            ``spconv1``, [C_out, k0, k1, k2, C_in] if ``spconv2``.
        layout (str): Layout of ``weight``.

    Returns:
        Tensor: [C_out, k0, k1, k2, C_in], same dtype and device.
    """
    _check_5d(weight)
    if normalise_spconv_layout(layout) == SPCONV1:
        return weight.permute(4, 0, 1, 2, 3).contiguous()
    return weight


def from_spconv2(weight: Tensor, layout: str) -> Tensor:
    """Bring a spconv 2.x weight [C_out, k0, k1, k2, C_in] to ``layout``.

    Args:
        weight (Tensor): [C_out, k0, k1, k2, C_in].
        layout (str): Wanted layout.

    Returns:
        Tensor: The weight in ``layout`` (inverse of :func:`to_spconv2`).
    """
    _check_5d(weight)
    if normalise_spconv_layout(layout) == SPCONV1:
        return weight.permute(1, 2, 3, 4, 0).contiguous()
    return weight


def kernel_axis_permutation(src_order: str, dst_order: str) -> Tuple[int, int, int]:
    """Kernel-axis permutation between two grid axis orders.

    Args:
        src_order (str): Axis order of the source sparse tensor, e.g. 'xyz'.
        dst_order (str): Axis order of the target sparse tensor, e.g. 'zyx'.

    Returns:
        tuple[int, int, int]: ``p`` such that target kernel axis ``i`` is
        source kernel axis ``p[i]`` (``(2, 1, 0)`` for 'xyz' -> 'zyx').
    """
    for order in (src_order, dst_order):
        if sorted(order) != ['x', 'y', 'z']:
            raise ConversionError(
                f'unknown grid axis order {order!r}; expected a permutation '
                f'of "xyz" such as {AXIS_ORDERS}')
    return tuple(src_order.index(axis) for axis in dst_order)


def permute_kernel_axes(weight: Tensor, src_order: str, dst_order: str) -> Tensor:
    """Re-order the kernel axes of a spconv 2.x weight between axis orders.

    Args:
        weight (Tensor): [C_out, k_a, k_b, k_c, C_in], kernel axes in
            ``src_order`` (e.g. X, Y, Z).
        src_order (str): Axis order of ``weight``'s kernel, e.g. 'xyz'.
        dst_order (str): Wanted axis order, e.g. 'zyx'.

    Returns:
        Tensor: [C_out, k'_0, k'_1, k'_2, C_in] with kernel axes in
        ``dst_order``; ``out[o, i, j, k, c]`` equals the source tap at the
        same spatial offset.
    """
    _check_5d(weight)
    perm = kernel_axis_permutation(src_order, dst_order)
    if perm == (0, 1, 2):
        return weight
    return weight.permute(0, 1 + perm[0], 1 + perm[1], 1 + perm[2], 4).contiguous()


@dataclass(frozen=True)
class SparseConvShapeHint:
    """What is known about one sparse conv independently of its weight.

    Attributes:
        out_channels (int, optional): C_out (from the target manifest or the
            next normalisation layer in the source state dict).
        in_channels (int, optional): C_in (from the target manifest or the
            previous normalisation layer).
        kernel_size (tuple[int, int, int], optional): Kernel size in the
            SOURCE axis order (from the target manifest).
        origin (str): Where the hint came from, for error messages.
    """
    out_channels: Optional[int] = None
    in_channels: Optional[int] = None
    kernel_size: Optional[Tuple[int, int, int]] = None
    origin: str = 'no hint'


def candidate_layouts(shape: Sequence[int], hint: SparseConvShapeHint) -> FrozenSet[str]:
    """Layouts under which a 5-D weight shape agrees with a hint.

    Args:
        shape (Sequence[int]): The stored weight shape (5 ints).
        hint (SparseConvShapeHint): Known channels / kernel size.

    Returns:
        frozenset[str]: Subset of {'spconv1', 'spconv2'}; empty when the
        shape fits neither, both when the hint cannot tell them apart
        (e.g. only C_out known and C_in == C_out).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 5:
        return frozenset()
    readings = {
        SPCONV1: dict(kernel=shape[0:3], cin=shape[3], cout=shape[4]),
        SPCONV2: dict(kernel=shape[1:4], cin=shape[4], cout=shape[0]),
    }
    fits = set()
    for layout, reading in readings.items():
        if hint.out_channels is not None and reading['cout'] != hint.out_channels:
            continue
        if hint.in_channels is not None and reading['cin'] != hint.in_channels:
            continue
        if hint.kernel_size is not None and tuple(reading['kernel']) != tuple(hint.kernel_size):
            continue
        fits.add(layout)
    return frozenset(fits)


def decide_spconv_layout(weights: Mapping[str, Tuple[Sequence[int], SparseConvShapeHint]],
                         declared: Optional[str] = None,
                         declared_by: str = '--src-spconv-layout',
                         fallback: Optional[str] = None,
                         fallback_by: str = 'layout default') -> Tuple[str, str]:
    """Decide the storage layout of a checkpoint's sparse-conv weights.

    Every weight must admit the chosen layout. Shapes decide when they leave
    one layout; a declared layout (flag or checkpoint metadata) decides when
    they leave two, and is rejected when the shapes contradict it.

    Args:
        weights (Mapping[str, tuple]): Source key -> (shape, hint) for every
            sparse-conv weight to convert.
        declared (str, optional): Layout declared by the user or the
            checkpoint metadata.
        declared_by (str): Who declared it, for messages.
        fallback (str, optional): Layout the source layout is known to use
            (e.g. our own checkpoints are written with spconv 2.x); used
            only when the shapes fit both layouts and nothing was declared.
        fallback_by (str): Where the fallback comes from, for the report.

    Returns:
        tuple[str, str]: (layout, how it was decided: 'shapes', or
        ``declared_by``).

    Raises:
        ConversionError: A weight fits no layout, the weights disagree, the
            declaration contradicts the shapes, or the shapes are ambiguous
            and nothing was declared.
    """
    if declared is not None:
        declared = normalise_spconv_layout(declared)
    possible = set(SPCONV_LAYOUTS)
    per_key: Dict[str, FrozenSet[str]] = {}
    for key, (shape, hint) in weights.items():
        fits = candidate_layouts(shape, hint)
        per_key[key] = fits
        if not fits:
            raise ConversionError(
                f'sparse-conv weight {key!r} has shape {list(shape)}, which '
                f'fits neither {SPCONV_LAYOUT_DOC[SPCONV1]} nor '
                f'{SPCONV_LAYOUT_DOC[SPCONV2]} given C_out='
                f'{hint.out_channels}, C_in={hint.in_channels}, kernel='
                f'{hint.kernel_size} ({hint.origin})')
        possible &= fits
    if not weights:
        return declared or SPCONV2, (declared_by if declared else 'no sparse-conv weights')
    if not possible:
        by_layout = {lay: sorted(k for k, f in per_key.items() if f == {lay})[:3]
                     for lay in SPCONV_LAYOUTS}
        raise ConversionError(
            'sparse-conv weights disagree on their layout: '
            f'{by_layout[SPCONV1]} only fit spconv1 while '
            f'{by_layout[SPCONV2]} only fit spconv2')
    if declared is not None:
        if declared not in possible:
            raise ConversionError(
                f'{declared_by} says {declared} but the sparse-conv weight '
                f'shapes only fit {sorted(possible)}')
        return declared, declared_by if len(possible) > 1 else 'shapes'
    if len(possible) > 1 and fallback is not None:
        return normalise_spconv_layout(fallback), fallback_by
    if len(possible) > 1:
        example = next(iter(per_key))
        raise ConversionError(
            'cannot tell the sparse-conv weight layout from the shapes '
            f'(e.g. {example!r} {list(weights[example][0])} fits both '
            f'{SPCONV_LAYOUT_DOC[SPCONV1]} and {SPCONV_LAYOUT_DOC[SPCONV2]}); '
            'pass --src-spconv-layout spconv1|spconv2, or give a target '
            'manifest, or convert a checkpoint whose meta records '
            '`spconv_layout`')
    return possible.pop(), 'shapes'


def _check_5d(weight: Tensor) -> None:
    if weight.dim() != 5:
        raise ConversionError(
            f'expected a 5-D sparse-conv weight, got shape {list(weight.shape)}')
