"""The transfer experiment's chains: pre-train -> convert -> fine-tune, as data.

Each chain pre-trains one self-supervised model on the whole training split
(no labels), converts its encoder into a stock model's layout with
``tools/model_converters/convert_checkpoint.py --strict``, then fine-tunes
that model on every label fraction from scratch and from the converted
weights. Another downstream task is a new :class:`ChainSpec` with its own
metric keys (:func:`detection_chain` / :func:`segmentation_chain` fill in
those of nuScenes detection and BEV map segmentation).
"""
import dataclasses
import logging
import os
from typing import Dict, Optional, Sequence, Tuple

from tools.transfer.steps import TransferExperimentError

logger = logging.getLogger(__name__)

NUSCENES_METRIC_PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes/'


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """One pre-train -> convert -> fine-tune chain.

    Attributes:
        name (str): Chain id used on the command line and in the results.
        pretrain_config (str): Pre-training config (repository-relative).
        src_layout (str): ``convert_checkpoint.py --src-layout``.
        dst_layout (str): ``convert_checkpoint.py --dst-layout``.
        modules (tuple[str]): ``--modules`` moved (all strict).
        downstream_config (str): Fine-tuning config (file or ``pkg::path``).
        metric_keys (dict[str, str]): Result column -> metric name as logged
            by mmengine (a key equal to it or ending with ``/`` + it).
        table_metrics (tuple[str]): Columns shown in the README table.
        paper_reference (dict[int, str]): Label percentage -> the paper's
            numbers for reference (``'n/a'`` when the paper gives none).
        citation (str): Paper and setting the reference numbers come from.
        needs_mmdet3d_checkout (bool): The downstream model is an mmdet3d
            project outside the wheel (BEVFusion): see :func:`find_mmdet3d_checkout`.
    """

    name: str
    pretrain_config: str
    src_layout: str
    dst_layout: str
    modules: Tuple[str, ...]
    downstream_config: str
    metric_keys: Dict[str, str]
    table_metrics: Tuple[str, ...]
    paper_reference: Dict[int, str]
    citation: str
    needs_mmdet3d_checkout: bool = False

    def summary(self) -> dict:
        """JSON-ready description (stored in the results)."""
        out = dataclasses.asdict(self)
        out['paper_reference'] = {str(k): v for k, v in self.paper_reference.items()}
        return out


DETECTION_METRICS = {'mAP': NUSCENES_METRIC_PREFIX + 'mAP', 'NDS': NUSCENES_METRIC_PREFIX + 'NDS'}
SEGMENTATION_METRICS = {'mIoU': 'bev_seg/mIoU'}

#: What NS-MAE's camera + LiDAR encoder hands over (BEVFusion's module names).
NSMAE_CAMERA_LIDAR_MODULES = ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                              'fusion_layer')
#: Pre-training and conversion of both MIM4D chains (pre-trained once): the
#: tiny MIM4D's image side, under BEVDet's module names.
MIM4D_TO_BEVDET = dict(
    pretrain_config='projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_'
    'synthetic-pretrain.py',
    src_layout='mim4d', dst_layout='bevdet',
    modules=('img_backbone', 'img_neck', 'img_view_transformer'))

# NS-MAE's label-efficient BEVFusion C+L results on nuScenes val (METHODS.md),
# the reference of both NS-MAE detection chains.
NSMAE_BEVFUSION_REFERENCE = {
    10: 'mAP 54.2 -> 55.9',
    100: 'mAP 60.8 -> 63.0, NDS 64.1 -> 65.5',
}


def full_labels_reference(numbers: str) -> Dict[int, str]:
    """Reference of a paper that reports only the all-labels (100 %) result."""
    return {10: 'n/a', 100: numbers}


def detection_chain(**fields) -> ChainSpec:
    """A chain scored by nuScenes detection (mAP and NDS in the table)."""
    return ChainSpec(metric_keys=DETECTION_METRICS, table_metrics=('mAP', 'NDS'), **fields)


def segmentation_chain(**fields) -> ChainSpec:
    """A chain scored by BEV map segmentation (mIoU in the table)."""
    return ChainSpec(metric_keys=SEGMENTATION_METRICS, table_metrics=('mIoU', ), **fields)


CHAINS: Dict[str, ChainSpec] = {spec.name: spec for spec in (
    detection_chain(
        name='nsmae-centerpoint',
        pretrain_config='projects/NSMAE/configs/nsmae_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='mmdet3d-centerpoint', modules=('pts_middle_encoder', ),
        downstream_config='configs/centerpoint/'
        'centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py',
        paper_reference=NSMAE_BEVFUSION_REFERENCE,
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L on nuScenes val; the paper reports '
        'no LiDAR-only CenterPoint transfer'),
    detection_chain(
        name='mim4d-bevdet', **MIM4D_TO_BEVDET,
        downstream_config='configs/bevdet/bevdet-r18_lss_centerhead_1xb2-2e_synthetic-3d.py',
        paper_reference=full_labels_reference('mAP 41.4 (+3.5 over its baseline), NDS 47.0'),
        citation='MIM4D (Zou et al. 2024), UVTR-C vs0.075 on nuScenes val; no BEVDet or '
        'label-efficient numbers in the paper'),
    segmentation_chain(
        name='nsmae-bevseg',
        pretrain_config='projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='bevseg', modules=NSMAE_CAMERA_LIDAR_MODULES,
        downstream_config='projects/BEVSeg/configs/'
        'bevfusionseg_lidar-cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py',
        paper_reference=full_labels_reference('mIoU 42.9 -> 46.6'),
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L BEV map segmentation on nuScenes val; '
        'METHODS.md gives no label-efficient segmentation numbers'),
    segmentation_chain(
        name='nsmae-cam-bevseg',
        pretrain_config='projects/NSMAE/configs/nsmae_r18-lss_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='bevseg-camera',
        modules=('img_backbone', 'img_neck', 'view_transform'),
        downstream_config='projects/BEVSeg/configs/'
        'bevfusionseg_cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py',
        paper_reference=full_labels_reference('mIoU 40.1 -> 44.3'),
        citation='NS-MAE (Xu et al. 2023), BEVFusion camera-only BEV map segmentation on '
        'nuScenes val; METHODS.md gives no label-efficient segmentation numbers'),
    segmentation_chain(
        name='mim4d-bevseg', **MIM4D_TO_BEVDET,
        downstream_config='projects/BEVSeg/configs/bevdetseg_r18-lss_1xb1-2e_synthetic-seg.py',
        paper_reference=full_labels_reference('IoU +8.7'),
        citation='MIM4D (Zou et al. 2024), BEV segmentation on nuScenes val (+8.7 IoU over '
        'its baseline; METHODS.md gives no absolute, per-class or label-efficient numbers and '
        "not the paper's segmentation model, which is not reproduced here); here BEVDetSeg: "
        "BEVDet's camera encoder (MIM4D's image side) with the BEVFusion map head"),
    detection_chain(
        name='nsmae-bevfusion',
        pretrain_config='projects/NSMAE/configs/'
        'nsmae_swint-tiny-lss_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='mmdet3d-bevfusion', modules=NSMAE_CAMERA_LIDAR_MODULES,
        downstream_config='configs/bevfusion/'
        'bevfusion_lidar-cam_voxel03-tiny_swint-tiny_second_secfpn_1xb2-2e_synthetic-3d.py',
        paper_reference=NSMAE_BEVFUSION_REFERENCE,
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L (256x704, 9 sweeps) on nuScenes val: '
        "the paper's headline transfer; here the stock mmdet3d BEVFusion, tiny",
        needs_mmdet3d_checkout=True),
)}


def find_mmdet3d_checkout(chains: Sequence[str]) -> Optional[str]:
    """Make the mmdetection3d checkout of the selected chains importable.

    ``$MMDET3D_ROOT``, else ``../mmdetection3d`` beside the repository (as
    ``tools/train.py``), else the shared unmodified v1.4.0 copy
    (``render_pretrain.paths.upstream_mmdet3d_dir``). The choice is written
    to ``$MMDET3D_ROOT`` so that the subprocesses (train, convert) use it.

    Args:
        chains (Sequence[str]): Keys of :data:`CHAINS`.

    Returns:
        str or None: The checkout, None when no chain needs one.

    Raises:
        TransferExperimentError: If a chain needs a checkout and none exists.
    """
    from tools.utils.runner_cli import (DEFAULT_MMDET3D_ROOT, MMDET3D_ROOT_ENV,
                                        use_mmdet3d_checkout)
    from render_pretrain.paths import upstream_mmdet3d_dir
    needing = [name for name in chains if CHAINS[name].needs_mmdet3d_checkout]
    if not needing:
        return None
    if not os.environ.get(MMDET3D_ROOT_ENV) and not os.path.isdir(DEFAULT_MMDET3D_ROOT):
        shared = upstream_mmdet3d_dir()
        if not (shared / 'projects' / 'BEVFusion').is_dir():
            raise TransferExperimentError(
                f'chain(s) {needing} fine-tune mmdet3d\'s BEVFusion project, which the wheel '
                f'does not ship: set {MMDET3D_ROOT_ENV}=/path/to/mmdetection3d (v1.4.0), or '
                f'put a checkout at {os.path.normpath(DEFAULT_MMDET3D_ROOT)}, or drop them '
                f'with --chains')
        logger.info('%s unset: using the shared mmdetection3d copy %s', MMDET3D_ROOT_ENV, shared)
        os.environ[MMDET3D_ROOT_ENV] = str(shared)
    return use_mmdet3d_checkout()
