"""Metadata stamped into converted checkpoints.

Two things are written:

- ``checkpoint['meta']``: layouts, modules, sparse-conv layout and grid axis
  order, versions, the source file's SHA-256 and the report counts, so a
  converted file says where it came from and how it was made;
- ``state_dict._metadata``: the per-module ``version`` entries that
  ``nn.Module.load_state_dict`` hands to ``_load_from_state_dict``.
  mmdet3d 1.x (``register_spconv2``) replaces spconv's
  ``_load_from_state_dict`` with one that permutes every sparse-conv weight
  from the spconv 1.x layout unless the module's metadata says
  ``version == 2``; a state dict without that entry would have its spconv 2.x
  weights permuted a second time. mmengine's ``load_checkpoint`` keeps
  ``_metadata`` (also with ``revise_keys``), so ``load_from`` works. A
  ``Pretrained`` init with a ``prefix`` rebuilds the dict and drops it: load
  whole-model checkpoints through ``load_from`` instead.
"""
from collections import OrderedDict
from typing import Dict, Iterable, Optional

import torch

from .report import ConversionReport
from .sparse_conv_layout import SPCONV2, SPCONV_LAYOUT_DOC


def mark_sparse_modules(state_dict: 'OrderedDict', sparse_weight_keys: Iterable[str],
                        layout: str) -> 'OrderedDict':
    """Attach ``_metadata`` so loaders know the sparse-conv weight layout.

    Args:
        state_dict (OrderedDict): Converted state dict (modified: gains a
            ``_metadata`` attribute).
        sparse_weight_keys (Iterable[str]): Keys of sparse-conv weights
            (``...conv1.weight``).
        layout (str): Layout of those weights; only ``spconv2`` is marked
            (version 2), spconv 1.x weights are left for the loader's
            permutation.

    Returns:
        OrderedDict: ``state_dict``.
    """
    metadata = OrderedDict()
    if layout == SPCONV2:
        for key in sparse_weight_keys:
            metadata[key.rsplit('.', 1)[0]] = {'version': 2}
    state_dict._metadata = metadata
    return state_dict


def build_metadata(report: ConversionReport, modules: Iterable[str], source_sha256: Optional[str],
                   source_name: Optional[str]) -> Dict:
    """The ``meta`` dict of a converted checkpoint.

    Args:
        report (ConversionReport): The conversion's report.
        modules (Iterable[str]): Requested module names.
        source_sha256 (str, optional): SHA-256 of the source file.
        source_name (str, optional): Source file name (no directories).

    Returns:
        dict: JSON-friendly metadata (str / int / list / dict only).
    """
    from render_pretrain import __version__

    return dict(
        src_layout=report.src_layout,
        dst_layout=report.dst_layout,
        modules=list(modules),
        spconv_layout=report.dst_spconv_layout,
        spconv_layout_doc=SPCONV_LAYOUT_DOC.get(report.dst_spconv_layout),
        src_spconv_layout=report.src_spconv_layout,
        spconv_layout_decided_by=report.spconv_decided_by,
        axis_order=report.dst_axis_order,
        src_axis_order=report.src_axis_order,
        versions=dict(torch=str(torch.__version__), render_pretrain=str(__version__)),
        source_sha256=source_sha256,
        source_file=source_name,
        converter='render_pretrain.converters',
        report=report.summary(),
    )
