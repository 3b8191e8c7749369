"""The mapping tables: one per (source layout -> target layout) pair.

Layouts (key prefixes of each model family):

- ``nsmae``: our NS-MAE pre-training detector (projects/NSMAE), stock
  BEVFusion attribute names, X,Y,Z sparse encoder, spconv 2.x weights.
  Pre-training-only keys: ``pv_render_head.*``, ``bev_render_head.*``,
  ``img_mask_token`` / masker parameters.
- ``nsmae-lidar-zyx``: the same detector built with mmdet3d's
  ``SparseEncoder`` (Z,Y,X order) as LiDAR encoder.
- ``mim4d``: our MIM4D pre-training detector (projects/MIM4D):
  ``img_backbone``, ``img_neck``, the depth net (one 1x1 conv to D + C
  channels) under :data:`MIM4D_DEPTH_NET` and the input projection under
  :data:`MIM4D_INPUT_PROJ`; pre-training-only ``temporal_predictor.*``,
  ``render_head.*``, ``view_transform.volume_proj``, ``img_masker.*``.
- ``uvtr-mim4d``: UniPAD / MIM4D released UVTR camera checkpoints
  (``UVTRSSL`` in hustvl/MIM4D ``uvtr_ssl_hop.py``, Nightmare-n/UniPAD
  ``uvtr_ssl.py``): ``img_backbone``, ``img_neck``, ``input_proj`` (1x1 conv
  after the neck), ``depth_net`` (``Conv2d`` for ``SimpleDepth`` or
  ``DepthNet`` for ``ComplexDepth``); pre-training-only ``view_trans``
  (MIM4D; UniPAD keeps it in ``pts_bbox_head.view_trans``), ``render_conv``,
  ``history_decoder``, ``pts_bbox_head`` (render head); the LiDAR branch of
  fusion checkpoints (``pts_*``) is dropped as the other modality. Read off
  the two repositories' detector code, not off a released file.
- ``mit-bevfusion``: mit-han-lab BEVFusion, the NS-MAE release layout
  (``encoders.camera.{backbone,neck,vtransform}``,
  ``encoders.lidar.backbone``, ``fuser``, ``decoder.{backbone,neck}``,
  ``heads.{object,map}``); sparse weights usually spconv 1.x, decided from
  the shapes.
- ``mmdet3d-bevfusion`` (C+L), ``mmdet3d-bevfusion-camera`` (C only),
  ``mmdet3d-bevfusion-lidar`` (L only): mmdet3d 1.x projects/BEVFusion,
  X,Y,Z sparse tensors, spconv 2.x. The map segmentation head is ``seg_head``.
- ``bevseg`` (C+L), ``bevseg-camera`` (C only), ``bevseg-lidar`` (L only):
  the BEV map-segmentation detector ``BEVFusionSeg`` (projects/BEVSeg):
  mmdet3d BEVFusion's encoder and decoder names, X,Y,Z sparse tensors,
  spconv 2.x, map head ``seg_head`` (BEVFusion's ``heads.map``); no
  ``bbox_head``.
- ``mmdet3d-centerpoint``: mmdet3d 1.x CenterPoint (``SparseEncoder``,
  Z,Y,X order, spconv 2.x).
- ``bevdet``: official BEVDet image side (``img_backbone``, ``img_neck``,
  ``img_view_transformer.depthnet``).

Edit a table here when a detector renames an attribute; the engine needs no
change. Grid constants (``frustum``, ``dx``, ``bx``, ``nx``) are declared per
view-transform module and never travel.
"""
from typing import Dict, List, Tuple

from .errors import ConversionError
from .mapping_table import GRID_CONSTANTS, MappingTable, ModuleRule

# Our MIM4D detector's depth net and input projection (edit if renamed).
MIM4D_DEPTH_NET = 'view_transform.depthnet.'
MIM4D_INPUT_PROJ = 'view_transform.input_proj.'

NSMAE_PRETRAIN_ONLY = ('pv_render_head.', 'bev_render_head.', 'img_mask_token',
                       'img_masker.', 'pts_masker.', 'masker.')
MIM4D_PRETRAIN_ONLY = ('temporal_predictor.', 'render_head.', 'img_mask_token',
                       'img_masker.', 'masker.')
UVTR_PRETRAIN_ONLY = ('view_trans.', 'render_conv.', 'history_decoder.',
                      'pts_bbox_head.', 'pts_voxel_encoder.', 'pts_middle_encoder.',
                      'pts_backbone.', 'pts_neck.')

# (module name, our/mmdet3d prefix, mit-han-lab prefix or None, sparse, grid)
_BEVFUSION_MODULES = (
    ('img_backbone', 'img_backbone.', 'encoders.camera.backbone.', False, False),
    ('img_neck', 'img_neck.', 'encoders.camera.neck.', False, False),
    ('view_transform', 'view_transform.', 'encoders.camera.vtransform.', False, True),
    ('pts_voxel_encoder', 'pts_voxel_encoder.', None, False, False),
    ('pts_middle_encoder', 'pts_middle_encoder.', 'encoders.lidar.backbone.', True, False),
    ('fusion_layer', 'fusion_layer.', 'fuser.', False, False),
    ('pts_backbone', 'pts_backbone.', 'decoder.backbone.', False, False),
    ('pts_neck', 'pts_neck.', 'decoder.neck.', False, False),
    ('bbox_head', 'bbox_head.', 'heads.object.', False, False),
    ('seg_head', 'seg_head.', 'heads.map.', False, False),
)
_CAMERA = ('img_backbone', 'img_neck', 'view_transform')
_LIDAR = ('pts_voxel_encoder', 'pts_middle_encoder', 'pts_backbone', 'pts_neck')
# Modules our NS-MAE detector always has; the rest move when present.
_NSMAE_REQUIRED = ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                   'fusion_layer')


def _grid(prefix: str) -> Tuple[str, ...]:
    """Full keys of the grid constants of a view transform at ``prefix``."""
    return tuple(prefix + name for name in GRID_CONSTANTS)


def _rule(name: str, src: str, dst: str, sparse: bool = False, grid: bool = False,
          required: bool = True) -> ModuleRule:
    return ModuleRule(name=name, src_prefix=src, dst_prefix=dst, sparse=sparse,
                      grid_constants=GRID_CONSTANTS if grid else (), required=required)


def _nsmae_to_bevfusion(src: str, axis: str, dst: str = 'mmdet3d-bevfusion',
                        what: str = 'mmdet3d BEVFusion C+L') -> MappingTable:
    rules = tuple(
        _rule(name, ours, ours, sparse, grid, required=name in _NSMAE_REQUIRED)
        for name, ours, _, sparse, grid in _BEVFUSION_MODULES
        if name not in ('bbox_head', 'seg_head'))
    return MappingTable(
        src_layout=src, dst_layout=dst,
        description=f'NS-MAE ({axis.upper()} sparse encoder) -> {what}',
        modules=rules, src_axis_order=axis, dst_axis_order='xyz',
        src_spconv_layout='spconv2', discard_prefixes=NSMAE_PRETRAIN_ONLY)


def _nsmae_to_centerpoint(src: str, axis: str) -> MappingTable:
    rules = (
        _rule('pts_voxel_encoder', 'pts_voxel_encoder.', 'pts_voxel_encoder.', required=False),
        _rule('pts_middle_encoder', 'pts_middle_encoder.', 'pts_middle_encoder.', sparse=True),
        _rule('pts_backbone', 'pts_backbone.', 'pts_backbone.', required=False),
        _rule('pts_neck', 'pts_neck.', 'pts_neck.', required=False),
    )
    return MappingTable(
        src_layout=src, dst_layout='mmdet3d-centerpoint',
        description=f'NS-MAE ({axis.upper()} sparse encoder) -> mmdet3d CenterPoint '
                    '(sparse encoder, BEV backbone/neck where present)',
        modules=rules, src_axis_order=axis, dst_axis_order='zyx',
        src_spconv_layout='spconv2', src_grid_constants=_grid('view_transform.'),
        discard_prefixes=NSMAE_PRETRAIN_ONLY + ('img_backbone.', 'img_neck.',
                                                'view_transform.', 'fusion_layer.'))


def _mit_bevfusion_table(ours_layout: str, to_mit: bool, description: str,
                         with_bbox_head: bool = True, **kwargs) -> MappingTable:
    """Table between mit-han-lab BEVFusion and one of our BEVFusion layouts.

    The modules are those of ``_BEVFUSION_MODULES`` that mit-han-lab has
    (without ``bbox_head`` for the segmentation layout), renamed one to one
    and all optional. mit-han-lab's side is XYZ; its spconv weights are
    taken as found (``src_spconv_layout=None``) and written as spconv 1.x.

    Args:
        ours_layout (str): ``'mmdet3d-bevfusion'`` or ``'bevseg'``.
        to_mit (bool): Ours -> mit-han-lab (else mit-han-lab -> ours).
        description (str): The table's description.
        with_bbox_head (bool): Map the detection head.
        **kwargs: Further ``MappingTable`` fields (e.g. ``discard_prefixes``).
    """
    modules = tuple(
        _rule(name, *((ours, mit) if to_mit else (mit, ours)), sparse, grid, required=False)
        for name, ours, mit, sparse, grid in _BEVFUSION_MODULES
        if mit and (with_bbox_head or name != 'bbox_head'))
    if to_mit:
        return MappingTable(src_layout=ours_layout, dst_layout='mit-bevfusion',
                            description=description, modules=modules, src_axis_order='xyz',
                            dst_axis_order='xyz', src_spconv_layout='spconv2',
                            dst_spconv_layout='spconv1', **kwargs)
    return MappingTable(src_layout='mit-bevfusion', dst_layout=ours_layout,
                        description=description, modules=modules, src_axis_order='xyz',
                        dst_axis_order='xyz', src_spconv_layout=None, **kwargs)


def _mit_to_mmdet3d() -> MappingTable:
    return _mit_bevfusion_table(
        'mmdet3d-bevfusion', False, 'mit-han-lab BEVFusion / NS-MAE release -> mmdet3d '
        'BEVFusion C+L')


def _mmdet3d_to_mit() -> MappingTable:
    return _mit_bevfusion_table(
        'mmdet3d-bevfusion', True, 'mmdet3d BEVFusion -> mit-han-lab BEVFusion (spconv 1.x '
        'weights)')


def _mit_to_bevseg() -> MappingTable:
    return _mit_bevfusion_table(
        'bevseg', False, 'mit-han-lab BEVFusion (seg release) -> BEVFusionSeg C+L '
        '(encoders, decoder, heads.map -> seg_head)', with_bbox_head=False,
        discard_prefixes=('heads.object.', ))


def _bevseg_to_mit() -> MappingTable:
    return _mit_bevfusion_table(
        'bevseg', True, 'BEVFusionSeg -> mit-han-lab BEVFusion (seg_head -> heads.map, '
        'spconv 1.x weights)', with_bbox_head=False)


def _mit_to_centerpoint() -> MappingTable:
    return MappingTable(
        src_layout='mit-bevfusion', dst_layout='mmdet3d-centerpoint',
        description='mit-han-lab BEVFusion / NS-MAE release -> mmdet3d CenterPoint',
        modules=(
            _rule('pts_middle_encoder', 'encoders.lidar.backbone.', 'pts_middle_encoder.',
                  sparse=True),
            _rule('pts_backbone', 'decoder.backbone.', 'pts_backbone.', required=False),
            _rule('pts_neck', 'decoder.neck.', 'pts_neck.', required=False),
        ),
        src_axis_order='xyz', dst_axis_order='zyx',
        src_grid_constants=_grid('encoders.camera.vtransform.'),
        discard_prefixes=('encoders.camera.', 'fuser.', 'heads.'))


def _to_bevdet(src: str, depth_src: str, discard: Tuple[str, ...], what: str) -> MappingTable:
    return MappingTable(
        src_layout=src, dst_layout='bevdet',
        description=f'{what} -> BEVDet image side (backbone, neck, depth net where shapes allow)',
        modules=(
            _rule('img_backbone', 'img_backbone.', 'img_backbone.'),
            _rule('img_neck', 'img_neck.', 'img_neck.'),
            _rule('img_view_transformer', depth_src, 'img_view_transformer.depthnet.'),
        ),
        src_grid_constants=_grid('view_transform.'), discard_prefixes=discard)


def _mim4d_to_bevfusion_camera() -> MappingTable:
    return MappingTable(
        src_layout='mim4d', dst_layout='mmdet3d-bevfusion-camera',
        description='MIM4D -> mmdet3d BEVFusion camera branch (backbone, neck, depth net '
                    'as the final 1x1 depth/context conv where shapes allow)',
        modules=(
            _rule('img_backbone', 'img_backbone.', 'img_backbone.'),
            _rule('img_neck', 'img_neck.', 'img_neck.'),
            # MIM4D's depth net is one 1x1 conv to D + C channels, the role of
            # the last layer of DepthLSSTransform.depthnet.
            _rule('view_transform', MIM4D_DEPTH_NET, 'view_transform.depthnet.6.'),
        ),
        src_grid_constants=_grid('view_transform.'),
        discard_prefixes=MIM4D_PRETRAIN_ONLY + (MIM4D_INPUT_PROJ, 'view_transform.'))


def _uvtr_to_mim4d() -> MappingTable:
    return MappingTable(
        src_layout='uvtr-mim4d', dst_layout='mim4d',
        description='UniPAD / MIM4D UVTR camera checkpoint -> our MIM4D detector',
        modules=(
            _rule('img_backbone', 'img_backbone.', 'img_backbone.'),
            _rule('img_neck', 'img_neck.', 'img_neck.'),
            _rule(MIM4D_INPUT_PROJ.rstrip('.'), 'input_proj.', MIM4D_INPUT_PROJ, required=False),
            _rule(MIM4D_DEPTH_NET.rstrip('.'), 'depth_net.', MIM4D_DEPTH_NET),
        ),
        discard_prefixes=UVTR_PRETRAIN_ONLY)


def _build_tables() -> Dict[Tuple[str, str], MappingTable]:
    tables: List[MappingTable] = []
    for src, axis in (('nsmae', 'xyz'), ('nsmae-lidar-zyx', 'zyx')):
        full = _nsmae_to_bevfusion(src, axis)
        tables += [
            full,
            full.restricted('mmdet3d-bevfusion-camera', 'NS-MAE -> mmdet3d BEVFusion camera-only',
                            _CAMERA),
            full.restricted('mmdet3d-bevfusion-lidar',
                            f'NS-MAE ({axis.upper()} sparse encoder) -> mmdet3d BEVFusion '
                            'LiDAR-only', _LIDAR),
            _nsmae_to_centerpoint(src, axis),
        ]
        seg = _nsmae_to_bevfusion(src, axis, 'bevseg', 'BEVFusionSeg map segmentation C+L')
        tables += [
            seg,
            seg.restricted('bevseg-camera', 'NS-MAE -> BEVFusionSeg camera-only', _CAMERA),
            seg.restricted('bevseg-lidar', f'NS-MAE ({axis.upper()} sparse encoder) -> '
                           'BEVFusionSeg LiDAR-only', _LIDAR),
        ]
    tables.append(_to_bevdet(
        'nsmae', 'view_transform.depthnet.6.',
        NSMAE_PRETRAIN_ONLY + ('view_transform.', 'pts_', 'fusion_layer.'),
        'NS-MAE (final 1x1 depth/context conv of DepthLSS depthnet)'))
    tables.append(_to_bevdet('mim4d', MIM4D_DEPTH_NET, MIM4D_PRETRAIN_ONLY + ('view_transform.',),
                             'MIM4D'))
    tables.append(_mim4d_to_bevfusion_camera())
    mit = _mit_to_mmdet3d()
    tables += [
        mit,
        mit.restricted('mmdet3d-bevfusion-camera',
                       'mit-han-lab BEVFusion -> mmdet3d BEVFusion camera-only', _CAMERA),
        mit.restricted('mmdet3d-bevfusion-lidar',
                       'mit-han-lab BEVFusion -> mmdet3d BEVFusion LiDAR-only',
                       tuple(name for name in _LIDAR if name in mit.module_names)),
        _mmdet3d_to_mit(),
        _mit_to_centerpoint(),
    ]
    mit_seg = _mit_to_bevseg()
    tables += [
        mit_seg,
        mit_seg.restricted('bevseg-camera', 'mit-han-lab BEVFusion -> BEVFusionSeg camera-only '
                           '(decoder and map head where present)',
                           _CAMERA + ('pts_backbone', 'pts_neck', 'seg_head')),
        _bevseg_to_mit(),
        _uvtr_to_mim4d(),
    ]
    return {table.key: table for table in tables}


TABLES: Dict[Tuple[str, str], MappingTable] = _build_tables()


def available_pairs() -> List[Tuple[str, str]]:
    """All supported (source layout, target layout) pairs, sorted."""
    return sorted(TABLES)


def get_table(src_layout: str, dst_layout: str) -> MappingTable:
    """The mapping table of a layout pair.

    Raises:
        ConversionError: The pair is not supported; the message lists the
            supported pairs.
    """
    try:
        return TABLES[(src_layout, dst_layout)]
    except KeyError:
        known = sorted({s for s, _ in TABLES} | {d for _, d in TABLES})
        pairs = ', '.join(f'{s} -> {d}' for s, d in available_pairs())
        problem = ([f'unknown layout {name!r}' for name in (src_layout, dst_layout)
                    if name not in known] or [f'no table for {src_layout} -> {dst_layout}'])
        raise ConversionError(f'{"; ".join(problem)} (known layouts: {known}); supported '
                              f'conversions: {pairs}') from None
