"""Checkpoint converters: pre-trained encoders -> stock detectors.

Declarative and verified: one :class:`MappingTable` per (source layout ->
target layout) pair (:mod:`.tables`), a small engine (:mod:`.engine`),
sparse-conv layout handling (:mod:`.sparse_conv_layout`), a per-module
report (:mod:`.report`) and metadata stamped into the output
(:mod:`.metadata`). Pure PyTorch: no mm* import. The CLI is
``tools/model_converters/convert_checkpoint.py``.
"""
from .convert_file import convert_checkpoint_file
from .engine import ConversionResult, convert_state_dict
from .errors import ConversionError
from .manifest import load_manifest
from .mapping_table import GRID_CONSTANTS, MappingTable, ModuleRule
from .report import ConversionReport, ModuleReport
from .sparse_conv_layout import (SPCONV1, SPCONV2, candidate_layouts, decide_spconv_layout,
                                 from_spconv2, permute_kernel_axes, to_spconv2)
from .tables import TABLES, available_pairs, get_table

__all__ = [
    'ConversionError', 'ConversionReport', 'ConversionResult', 'GRID_CONSTANTS', 'MappingTable',
    'ModuleReport', 'ModuleRule', 'SPCONV1', 'SPCONV2', 'TABLES', 'available_pairs',
    'candidate_layouts', 'convert_checkpoint_file', 'convert_state_dict', 'decide_spconv_layout',
    'from_spconv2', 'get_table', 'load_manifest', 'permute_kernel_axes', 'to_spconv2',
]
