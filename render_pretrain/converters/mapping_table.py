"""Declarative description of one checkpoint conversion (source -> target).

A :class:`MappingTable` says, for one (source layout, target layout) pair,
which modules move and under which key prefixes, which modules hold sparse
convolutions (and in which grid axis order), which keys are grid constants
that never travel, and which source keys are known to be pre-training-only
(render heads, mask tokens, temporal predictor) and are dropped on purpose.
The tables themselves live in :mod:`render_pretrain.converters.tables`; the
engine (:mod:`render_pretrain.converters.engine`) interprets them.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple

GRID_CONSTANTS = ('dx', 'bx', 'nx', 'frustum')


@dataclass(frozen=True)
class ModuleRule:
    """How one module moves between layouts.

    Attributes:
        name (str): Module name used in ``--modules`` and in the report:
            the attribute name in our / mmdet3d's layout (``img_backbone``),
            whichever direction the table goes.
        src_prefix (str): Key prefix in the source state dict, with the
            trailing dot (``encoders.camera.backbone.``).
        dst_prefix (str): Key prefix in the target state dict
            (``img_backbone.``).
        sparse (bool): The module holds 3-D sparse convolutions: 5-D
            weights are converted between spconv layouts and axis orders.
        grid_constants (tuple[str]): Names relative to the prefixes that are
            grid constants (frustum, dx, bx, nx): skipped in the source,
            never written, never reported missing.
        required (bool): Part of the default module set; a checkpoint that
            lacks it is an error. Optional modules (parameter-free voxel
            encoders, BEV decoders the pre-training may not have) move when
            present; naming one in ``--modules`` makes it required.
    """
    name: str
    src_prefix: str
    dst_prefix: str
    sparse: bool = False
    grid_constants: Tuple[str, ...] = ()
    required: bool = True

    def __post_init__(self):
        for prefix in (self.src_prefix, self.dst_prefix):
            if not prefix.endswith('.'):
                raise ValueError(f'module prefix {prefix!r} of {self.name!r} must end with "."')


@dataclass(frozen=True)
class MappingTable:
    """One conversion: modules, sparse-conv handling and dropped keys.

    Attributes:
        src_layout (str): Source layout name (``nsmae``, ``mit-bevfusion``...).
        dst_layout (str): Target layout name.
        description (str): One line for ``--list-layouts`` and the README.
        modules (tuple[ModuleRule]): The modules that can move.
        src_axis_order (str, optional): Grid axis order of the source sparse
            encoder ('xyz' or 'zyx'); None when no sparse module moves.
        dst_axis_order (str, optional): Same for the target.
        src_spconv_layout (str, optional): Layout the source is known to be
            written with; None = decide from the shapes (see
            :func:`~render_pretrain.converters.sparse_conv_layout.decide_spconv_layout`).
        dst_spconv_layout (str): Layout written to the output.
        discard_prefixes (tuple[str]): Source key prefixes dropped on
            purpose (pre-training-only heads); reported as discarded.
        src_grid_constants (tuple[str]): Full source keys of grid constants
            outside any moved module (reported as skipped, never written).
    """
    src_layout: str
    dst_layout: str
    description: str
    modules: Tuple[ModuleRule, ...]
    src_axis_order: Optional[str] = None
    dst_axis_order: Optional[str] = None
    src_spconv_layout: Optional[str] = None
    dst_spconv_layout: str = 'spconv2'
    discard_prefixes: Tuple[str, ...] = field(default_factory=tuple)
    src_grid_constants: Tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        names = [rule.name for rule in self.modules]
        if len(set(names)) != len(names):
            raise ValueError(f'duplicate module names in table {self.key}: {names}')
        if any(rule.sparse for rule in self.modules) and not (
                self.src_axis_order and self.dst_axis_order):
            raise ValueError(f'table {self.key} moves a sparse module but does '
                             'not declare src/dst axis orders')

    @property
    def key(self) -> Tuple[str, str]:
        """(src_layout, dst_layout)."""
        return (self.src_layout, self.dst_layout)

    @property
    def module_names(self) -> Tuple[str, ...]:
        """Names of all modules this table can move, in table order."""
        return tuple(rule.name for rule in self.modules)

    def rule(self, name: str) -> ModuleRule:
        """The rule of module ``name`` (KeyError if absent)."""
        for rule in self.modules:
            if rule.name == name:
                return rule
        raise KeyError(name)

    def restricted(self, dst_layout: str, description: str,
                   names: Tuple[str, ...]) -> 'MappingTable':
        """A copy of this table that moves only ``names`` (a module subset).

        The other modules' source prefixes become discarded prefixes, so a
        C+L checkpoint converted to a camera-only target reports its LiDAR
        modules as dropped on purpose.
        """
        kept = tuple(rule for rule in self.modules if rule.name in names)
        if len(kept) != len(names):
            raise ValueError(f'{names} not all in table {self.key}')
        dropped = tuple(rule.src_prefix for rule in self.modules if rule.name not in names)
        grid = tuple(rule.src_prefix + g for rule in self.modules if rule.name not in names
                     for g in rule.grid_constants)
        sparse = any(rule.sparse for rule in kept)
        return MappingTable(
            src_layout=self.src_layout, dst_layout=dst_layout,
            description=description, modules=kept,
            src_axis_order=self.src_axis_order if sparse else None,
            dst_axis_order=self.dst_axis_order if sparse else None,
            src_spconv_layout=self.src_spconv_layout,
            dst_spconv_layout=self.dst_spconv_layout,
            discard_prefixes=self.discard_prefixes + dropped,
            src_grid_constants=self.src_grid_constants + grid)
