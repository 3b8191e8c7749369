"""The conversion engine: applies a :class:`MappingTable` to a state dict.

Steps, in order:

1. resolve the requested modules (unknown name -> error);
2. sort every source key: a requested module (longest source prefix wins),
   a grid constant (skipped), a module that was not requested, a key dropped
   on purpose (pre-training-only heads) or unmapped;
3. fail if a required module has no tensor in the source;
4. decide the sparse-conv weight layout of the source from the shapes, the
   target manifest and the neighbouring normalisation layers
   (:func:`~render_pretrain.converters.sparse_conv_layout.decide_spconv_layout`);
5. rename, convert sparse-conv weights (layout, kernel axis order), verify
   against the target manifest (missing, unexpected, shape mismatches);
6. fail when the table does not know more than
   :data:`MAX_UNMAPPED_FRACTION` of the source tensors (a wrong
   ``--src-layout``), unless ``allow_unmapped``;
7. in strict mode, fail on any gap in the requested modules.

Nothing here reads or writes files; see :mod:`.convert_file`.
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from torch import Tensor

from .errors import ConversionError
from .manifest import Manifest
from .mapping_table import MappingTable, ModuleRule
from .report import ConversionReport, ModuleReport
from .sparse_conv_layout import (SPCONV1, SPCONV2, SparseConvShapeHint, decide_spconv_layout,
                                 from_spconv2, kernel_axis_permutation, normalise_spconv_layout,
                                 permute_kernel_axes, to_spconv2)

#: A conversion fails when more than this share of the source tensors is
#: *unmapped*: covered by no module rule, grid constant or declared discard
#: prefix of the table. A table accounts for every tensor of a checkpoint of
#: its source layout (0 unmapped for each tiny and paper-scale NS-MAE / MIM4D
#: config); a checkpoint of another layout leaves whole encoders unmapped:
#: an NS-MAE camera + LiDAR checkpoint declared as ``mim4d`` leaves its LiDAR
#: encoder and render heads (136 of 403 tensors, 34 %, paper scale; 136 of
#: 336, 40 %, tiny config). A stock detector's head is tolerated (a full
#: BEVFusion model read as ``nsmae``: its ``bbox_head``, 96 of 584, 16 %).
#: ``allow_unmapped`` overrides.
MAX_UNMAPPED_FRACTION = 0.25


@dataclass
class ConversionResult:
    """Output of :func:`convert_state_dict`.

    Attributes:
        state_dict (OrderedDict[str, Tensor]): Converted tensors (target
            keys), with ``_metadata`` marking spconv 2.x modules.
        report (ConversionReport): What happened, per module.
        modules (tuple[str]): Requested module names.
        sparse_weight_keys (list[str]): Target keys of sparse-conv weights.
    """
    state_dict: 'OrderedDict[str, Tensor]'
    report: ConversionReport
    modules: Tuple[str, ...]
    sparse_weight_keys: List[str]


def convert_state_dict(state_dict: Mapping[str, Tensor],
                       table: MappingTable,
                       modules: Optional[Sequence[str]] = None,
                       *,
                       manifest: Optional[Manifest] = None,
                       manifest_name: Optional[str] = None,
                       strict: bool = False,
                       src_spconv_layout: Optional[str] = None,
                       src_meta: Optional[Mapping] = None,
                       dst_spconv_layout: Optional[str] = None,
                       source_name: str = 'checkpoint',
                       allow_unmapped: bool = False,
                       progress: Optional[Callable[[int, int], None]] = None
                       ) -> ConversionResult:
    """Convert a state dict from ``table.src_layout`` to ``table.dst_layout``.

    Args:
        state_dict (Mapping[str, Tensor]): Source tensors, in file order
            (neighbour order is used to infer sparse-conv channel counts).
        table (MappingTable): The layout pair's table.
        modules (Sequence[str], optional): Module names to move; default:
            every module of the table (optional ones only when present).
        manifest (dict[str, tuple], optional): Target key -> shape; enables
            the missing / unexpected / shape checks (unexpected and
            mismatched tensors are then not written).
        manifest_name (str, optional): Manifest path, for the report.
        strict (bool): Raise on any gap in the requested modules (needs a
            manifest).
        src_spconv_layout (str, optional): Declared source sparse layout
            (``spconv1`` / ``spconv2``); checked against the shapes.
        src_meta (Mapping, optional): Source checkpoint ``meta``; its
            ``spconv_layout`` entry declares the layout when no flag does.
        dst_spconv_layout (str, optional): Output sparse layout; default
            ``table.dst_spconv_layout``.
        source_name (str): Name of the source, for messages.
        allow_unmapped (bool): Write even when more than
            :data:`MAX_UNMAPPED_FRACTION` of the source tensors are unmapped.
        progress (callable, optional): Called as ``progress(done, total)``
            after each source tensor of the requested modules is renamed /
            converted (``total``: those tensors).

    Returns:
        ConversionResult: Converted state dict and report.

    Raises:
        ConversionError: Unknown module, a required module absent from the
            source, undecidable or inconsistent sparse-conv layout, nothing
            to write, too many unmapped tensors, or (strict) any gap.
    """
    if strict and manifest is None:
        raise ConversionError('strict mode needs a target manifest (--target-manifest or '
                              '--target-config) to '
                              'check for missing, unexpected and mis-shaped tensors')
    rules = _resolve_modules(table, modules)
    dst_layout = normalise_spconv_layout(dst_spconv_layout or table.dst_spconv_layout)
    report = ConversionReport(src_layout=table.src_layout, dst_layout=table.dst_layout,
                              manifest=manifest_name)
    module_reports = {rule.name: ModuleReport(name=rule.name, src_prefix=rule.src_prefix,
                                              dst_prefix=rule.dst_prefix, required=required)
                      for rule, required in rules}
    report.modules = list(module_reports.values())
    requested = {rule.name: rule for rule, _ in rules}

    # 2. sort source keys.
    owned: Dict[str, List[str]] = {name: [] for name in requested}
    for key in state_dict:
        rule = _match_rule(table, key)
        if rule is None:
            if key in table.src_grid_constants:
                report.skipped_grid_constants.append(key)
            elif key.startswith(table.discard_prefixes):
                report.discarded.append(key)
            else:
                report.unmapped.append(key)
            continue
        if rule.name not in requested:
            report.not_requested.append(key)
            continue
        module_reports[rule.name].source_keys += 1
        if key[len(rule.src_prefix):] in rule.grid_constants:
            module_reports[rule.name].skipped.append(key)
        else:
            owned[rule.name].append(key)

    # 6 (checked early: it explains the errors that would follow). unmapped share.
    if not allow_unmapped and state_dict and \
            len(report.unmapped) > MAX_UNMAPPED_FRACTION * len(state_dict):
        prefixes = sorted({k.split('.', 1)[0] for k in report.unmapped})
        raise ConversionError(
            f'{source_name}: {len(report.unmapped)} of {len(state_dict)} tensors '
            f'({len(report.unmapped) / len(state_dict):.0%}, more than '
            f'{MAX_UNMAPPED_FRACTION:.0%}) are not known to the {table.src_layout} -> '
            f'{table.dst_layout} table (under {prefixes[:12]}, e.g. {report.unmapped[:3]}): '
            f'is --src-layout {table.src_layout!r} right? Pass --allow-unmapped to write the '
            'mapped tensors anyway.')

    # 3. required modules must be present.
    absent = [name for name, (rule, required) in zip(requested, rules)
              if required and not owned[name]]
    if absent or not any(owned.values()):
        names = absent or list(requested)
        prefixes = sorted({k.split('.', 1)[0] for k in state_dict})
        raise ConversionError(
            f'{source_name} has no tensor for module(s) {names} of layout {table.src_layout!r} '
            f'(expected keys under {[requested[n].src_prefix for n in names]}); its top-level '
            f'key prefixes are {prefixes[:12]}. Check --src-layout, or choose --modules.')

    # 4. sparse-conv layout.
    sparse_keys = {key: rule for name, rule in requested.items() if rule.sparse
                   for key in owned[name] if state_dict[key].dim() == 5}
    src_layout = None
    if sparse_keys:
        hints = {key: (tuple(state_dict[key].shape),
                       _shape_hint(key, rule, state_dict, owned[rule.name], table, manifest,
                                   dst_layout))
                 for key, rule in sparse_keys.items()}
        declared, declared_by = src_spconv_layout, '--src-spconv-layout'
        if declared is None and src_meta and src_meta.get('spconv_layout'):
            declared, declared_by = src_meta['spconv_layout'], f'{source_name} meta.spconv_layout'
        src_layout, decided_by = decide_spconv_layout(
            hints, declared, declared_by, fallback=table.src_spconv_layout,
            fallback_by=f'{table.src_layout} layout default')
        report.src_spconv_layout, report.spconv_decided_by = src_layout, decided_by
        report.dst_spconv_layout = dst_layout
        report.src_axis_order, report.dst_axis_order = table.src_axis_order, table.dst_axis_order

    # 5. rename, convert, verify.
    output: 'OrderedDict[str, Tensor]' = OrderedDict()
    sparse_out: List[str] = []
    total, done = sum(len(keys) for keys in owned.values()), 0
    for name, rule in requested.items():
        mrep = module_reports[name]
        produced = set()
        for key in owned[name]:
            dst_key = rule.dst_prefix + key[len(rule.src_prefix):]
            tensor = state_dict[key]
            if key in sparse_keys:
                converted = _convert_sparse_weight(tensor, src_layout, dst_layout,
                                                   table.src_axis_order, table.dst_axis_order)
                if converted is not tensor:
                    mrep.permuted.append(dst_key)
                tensor = converted
            produced.add(dst_key)
            if manifest is not None and dst_key not in manifest:
                mrep.unexpected.append(dst_key)
            elif manifest is not None and tuple(tensor.shape) != manifest[dst_key]:
                mrep.shape_mismatches.append((dst_key, tuple(tensor.shape), manifest[dst_key]))
            else:
                mrep.transferred.append(dst_key)
                output[dst_key] = tensor
                if key in sparse_keys:
                    sparse_out.append(dst_key)
            done += 1
            if progress is not None:
                progress(done, total)
        if manifest is not None and owned[name]:
            grid = {rule.dst_prefix + g for g in rule.grid_constants}
            mrep.missing = [k for k in manifest if k.startswith(rule.dst_prefix)
                            and k not in grid and k not in produced]

    if not output:
        raise ConversionError(f'nothing to write: no tensor of {source_name} survived the '
                              f'conversion\n{report.format()}')
    gaps = report.gaps()
    if strict and gaps:
        details = '; '.join(f'{name}: {", ".join(reasons)}' for name, reasons in gaps.items())
        raise ConversionError(f'strict conversion {table.src_layout} -> {table.dst_layout} '
                              f'failed: {details}\n{report.format()}')
    return ConversionResult(state_dict=output, report=report,
                            modules=tuple(requested), sparse_weight_keys=sparse_out)


def _resolve_modules(table: MappingTable,
                     modules: Optional[Sequence[str]]) -> List[Tuple[ModuleRule, bool]]:
    if modules is None:
        return [(rule, rule.required) for rule in table.modules]
    modules = [m.strip() for m in modules if m.strip()]
    unknown = [m for m in modules if m not in table.module_names]
    if unknown or not modules:
        raise ConversionError(
            f'unknown module(s) {unknown or modules} for {table.src_layout} -> '
            f'{table.dst_layout}; available: {list(table.module_names)}')
    return [(table.rule(m), True) for m in dict.fromkeys(modules)]


def _match_rule(table: MappingTable, key: str) -> Optional[ModuleRule]:
    """The table rule with the longest source prefix of ``key``."""
    best = None
    for rule in table.modules:
        if key.startswith(rule.src_prefix) and (
                best is None or len(rule.src_prefix) > len(best.src_prefix)):
            best = rule
    return best


def _shape_hint(key: str, rule: ModuleRule, state_dict: Mapping[str, Tensor],
                module_keys: List[str], table: MappingTable, manifest: Optional[Manifest],
                dst_layout: str) -> SparseConvShapeHint:
    """Known C_out / C_in / kernel of one sparse conv.

    From the target manifest when it lists the key (exact, including the
    kernel in the source axis order); else from the neighbouring
    normalisation layers in the source: C_out is the length of the next 1-D
    tensor after the weight, C_in that of the previous one (SECOND-style
    encoders always follow a sparse conv with a norm layer).
    """
    dst_key = rule.dst_prefix + key[len(rule.src_prefix):]
    if manifest is not None and len(manifest.get(dst_key, ())) == 5:
        shape = manifest[dst_key]
        if dst_layout == SPCONV2:
            cout, kernel_dst, cin = shape[0], shape[1:4], shape[4]
        else:
            kernel_dst, cin, cout = shape[0:3], shape[3], shape[4]
        perm = kernel_axis_permutation(table.src_axis_order, table.dst_axis_order)
        kernel_src = [0, 0, 0]
        for i, p in enumerate(perm):
            kernel_src[p] = kernel_dst[i]
        return SparseConvShapeHint(cout, cin, tuple(kernel_src),
                                   origin=f'target manifest {dst_key}')
    index = module_keys.index(key)
    after = [state_dict[k] for k in module_keys[index + 1:] if state_dict[k].dim() == 1]
    before = [state_dict[k] for k in module_keys[:index] if state_dict[k].dim() == 1]
    return SparseConvShapeHint(
        out_channels=after[0].numel() if after else None,
        in_channels=before[-1].numel() if before else None,
        origin='neighbouring norm layers')


def _convert_sparse_weight(weight: Tensor, src_layout: str, dst_layout: str, src_order: str,
                           dst_order: str) -> Tensor:
    """[layout, axis order] -> [layout, axis order] for one 5-D weight."""
    if src_layout == dst_layout and src_order == dst_order:
        return weight
    spconv2 = to_spconv2(weight, src_layout)
    spconv2 = permute_kernel_axes(spconv2, src_order, dst_order)
    return from_spconv2(spconv2, dst_layout) if dst_layout == SPCONV1 else spconv2
