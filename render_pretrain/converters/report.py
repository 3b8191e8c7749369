"""What a conversion did, per module: the converter's report.

The engine fills one :class:`ModuleReport` per requested module and one
:class:`ConversionReport` per conversion. ``format()`` renders the text the
CLI prints; ``summary()`` gives the counts stamped into the output
checkpoint's metadata; ``gaps()`` lists what strict mode refuses.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

Shape = Tuple[int, ...]


@dataclass
class ModuleReport:
    """Outcome for one module.

    Attributes:
        name (str): Module name (``img_backbone``...).
        src_prefix (str): Source key prefix.
        dst_prefix (str): Target key prefix.
        required (bool): The module had to be present in the source.
        source_keys (int): Source tensors found under ``src_prefix``.
        transferred (list[str]): Target keys written to the output.
        permuted (list[str]): Target keys of sparse-conv weights whose layout
            or kernel axis order was changed.
        skipped (list[str]): Source keys of grid constants (never written).
        missing (list[str], optional): Target-manifest keys under
            ``dst_prefix`` (grid constants excluded) that received nothing;
            None when no manifest was given.
        unexpected (list[str]): Converted keys the manifest does not have
            (not written).
        shape_mismatches (list[tuple[str, Shape, Shape]]): (target key,
            converted shape, manifest shape); not written.
    """
    name: str
    src_prefix: str
    dst_prefix: str
    required: bool
    source_keys: int = 0
    transferred: List[str] = field(default_factory=list)
    permuted: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    missing: Optional[List[str]] = None
    unexpected: List[str] = field(default_factory=list)
    shape_mismatches: List[Tuple[str, Shape, Shape]] = field(default_factory=list)

    @property
    def present(self) -> bool:
        """The source held at least one (non grid-constant) tensor."""
        return self.source_keys > len(self.skipped)

    def gaps(self) -> List[str]:
        """Human-readable reasons why strict mode would fail this module."""
        reasons = []
        if self.missing:
            reasons.append(f'{len(self.missing)} missing (e.g. {self.missing[0]})')
        if self.unexpected:
            reasons.append(f'{len(self.unexpected)} unexpected (e.g. {self.unexpected[0]})')
        if self.shape_mismatches:
            key, got, want = self.shape_mismatches[0]
            reasons.append(f'{len(self.shape_mismatches)} shape mismatches (e.g. {key}: '
                           f'converted {list(got)} vs target {list(want)})')
        if self.present and not self.transferred:
            reasons.append('nothing transferred')
        return reasons

    def counts(self) -> Dict[str, Optional[int]]:
        """Counts per category (``missing`` is None without a manifest)."""
        return dict(
            source=self.source_keys, transferred=len(self.transferred),
            permuted=len(self.permuted), skipped_grid_constants=len(self.skipped),
            missing=None if self.missing is None else len(self.missing),
            unexpected=len(self.unexpected), shape_mismatches=len(self.shape_mismatches))


@dataclass
class ConversionReport:
    """Outcome of one conversion.

    Attributes:
        src_layout (str): Source layout name.
        dst_layout (str): Target layout name.
        modules (list[ModuleReport]): One per requested module.
        discarded (list[str]): Source keys dropped on purpose
            (pre-training-only heads, modules of the other modality).
        not_requested (list[str]): Source keys of table modules that were
            not requested.
        unmapped (list[str]): Source keys no rule or discard prefix covers.
        skipped_grid_constants (list[str]): Source grid constants outside the
            moved modules (those inside are in ``ModuleReport.skipped``).
        src_spconv_layout (str, optional): Detected source sparse layout.
        spconv_decided_by (str, optional): 'shapes', a flag or metadata.
        dst_spconv_layout (str, optional): Layout written.
        src_axis_order (str, optional): Source sparse grid axis order.
        dst_axis_order (str, optional): Target sparse grid axis order.
        manifest (str, optional): Target manifest used for verification.
    """
    src_layout: str
    dst_layout: str
    modules: List[ModuleReport] = field(default_factory=list)
    discarded: List[str] = field(default_factory=list)
    not_requested: List[str] = field(default_factory=list)
    unmapped: List[str] = field(default_factory=list)
    skipped_grid_constants: List[str] = field(default_factory=list)
    src_spconv_layout: Optional[str] = None
    spconv_decided_by: Optional[str] = None
    dst_spconv_layout: Optional[str] = None
    src_axis_order: Optional[str] = None
    dst_axis_order: Optional[str] = None
    manifest: Optional[str] = None

    def module(self, name: str) -> ModuleReport:
        """The report of module ``name`` (KeyError if not requested)."""
        for report in self.modules:
            if report.name == name:
                return report
        raise KeyError(name)

    def gaps(self) -> Dict[str, List[str]]:
        """Module name -> reasons, for every module with a gap."""
        return {m.name: m.gaps() for m in self.modules if m.gaps()}

    def summary(self) -> Dict[str, object]:
        """Counts per module and for the whole checkpoint (JSON-friendly)."""
        return dict(
            modules={m.name: m.counts() for m in self.modules},
            discarded=len(self.discarded), not_requested=len(self.not_requested),
            unmapped=len(self.unmapped),
            skipped_grid_constants=len(self.skipped_grid_constants), manifest=self.manifest)

    def format(self) -> str:
        """Multi-line text report, one row per module."""
        lines = [f'conversion {self.src_layout} -> {self.dst_layout}'
                 + (f' (verified against {self.manifest})' if self.manifest else
                    ' (no target manifest: missing keys not checked)')]
        if self.src_spconv_layout:
            lines.append(f'sparse conv: {self.src_spconv_layout} {self.src_axis_order} '
                         f'(decided by {self.spconv_decided_by}) -> '
                         f'{self.dst_spconv_layout} {self.dst_axis_order}')
        header = ('module', 'source', 'transferred', 'permuted', 'grid-skipped', 'missing',
                  'unexpected', 'shape-mismatch')
        rows = [header]
        for m in self.modules:
            c = m.counts()
            rows.append((m.name, c['source'], c['transferred'], c['permuted'],
                         c['skipped_grid_constants'],
                         'n/a' if c['missing'] is None else c['missing'],
                         c['unexpected'], c['shape_mismatches']))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
        lines += ['  '.join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
        for m in self.modules:
            if not m.present:
                lines.append(f'  {m.name}: absent from the source checkpoint '
                             f'(no key under {m.src_prefix!r})')
            for reason in m.gaps():
                lines.append(f'  {m.name}: {reason}')
        for label, keys in (('grid constants skipped', self.skipped_grid_constants),
                            ('discarded (pre-training only / other modality)', self.discarded),
                            ('not requested', self.not_requested),
                            ('unmapped (no rule covers them)', self.unmapped)):
            if keys:
                lines.append(f'{label}: {len(keys)} keys, e.g. {keys[:3]}')
        return '\n'.join(lines)
