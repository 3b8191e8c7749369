"""End-to-end label-efficient transfer experiment: pre-train -> convert -> fine-tune.

Each *chain* pre-trains one self-supervised model on the whole training split
(no labels), converts its encoder into a stock detector's layout with
``tools/model_converters/convert_checkpoint.py --strict``, then fine-tunes the
detector on every label fraction twice with the same seed and schedule: from
scratch and from the converted weights. The detectors are evaluated at the
end of training with mmdet3d's ``NuScenesMetric`` (mAP, NDS). Chains are data
(:data:`CHAINS`), so another downstream task (e.g. BEV map segmentation with
mIoU) is a new :class:`ChainSpec` with its own metric keys.

Every step is one of the project's own command-line tools run as a
subprocess (``tools/create_synthetic_nuscenes.py``, ``tools/create_data.py``,
``tools/train.py``, ``tools/model_converters/convert_checkpoint.py``), with
its output in ``<work_dir>/.../step.log``. The config of each training step
is the stock/tiny config pointed at the experiment's world and schedule and
written next to its outputs (``config.py``), so any step can be re-run by
hand. A finished step (marker ``<work_dir>/steps/<name>.json`` plus its
outputs) is skipped on a re-run unless ``force``.

Schedule: a config's epoch-based schedule is stretched to the requested
epochs (``begin`` / ``end`` / ``milestones`` / ``T_max`` scaled by
``epochs / config epochs``); iteration-based warm-ups are kept.

Sizing. Steps run two at a time (``jobs=2``), one intra-op thread each
(``threads=1``): on 2 cores shared with other processes, two OpenMP
threads per process spin against the others (CenterPoint iterations went
from 1.1 s to 7-9 s), one thread per process does not. Per-step costs
measured on the 2-core development machine (2026-11-22) with other jobs
running (load 2.5-4), 1 thread, on a 10-scene x 4-key-frame world (176x64, 32 train / 8
val frames), 1 epoch:

==========================  ===========================================
world (create_synthetic)    12 s for 40 key frames (``--workers 2``)
infos (create_data)         3 s
NS-MAE LiDAR pre-training   0.29 s per iteration (1 frame); 33 s step
MIM4D pre-training          0.80 s per iteration (1 frame); 51 s step
conversion (strict)         13-16 s (builds the target model to verify)
CenterPoint fine-tuning     2.4 s per iteration (2 frames); val 0.32 s/frame
BEVDet fine-tuning          0.74 s per iteration (2 frames); val 0.26 s/frame
process start + build       10-15 s per training step
==========================  ===========================================

Default run: 10 scenes x 12 key frames (96 train / 24 val frames; 10 % by
scene = 1 of 8 train scenes = 12 frames), pre-training 4 epochs,
fine-tuning 6 epochs (288 CenterPoint / BEVDet iterations, 576 BEV
segmentation iterations of batch 1, at 100 %). Step wall times of a full
run with 8 fine-tuning epochs (2026-12-03, two steps at a time, 1 thread
each, load ~2), s:

- world 37, infos 13; pre-training: NS-MAE LiDAR 134, MIM4D 435, NS-MAE
  C+L 387; conversions 10-11 each;
- 8-epoch fine-tuning, scratch: CenterPoint 100 % 1339 (3.3 s per
  iteration), 10 % 167; BEVDet 100 % 549, 10 % 98; BEV segmentation
  100 % 914, 10 % 136 (the pre-trained runs cost the same).

That is ~7.4k s of steps, ~62 min on two workers even if perfectly
balanced: over the 60-min target, so the default is 6 fine-tuning epochs
(measured: 4.9k s of steps, 41.9 min wall). Each fine-tuning epoch of all chains,
fractions and inits costs ~800 s of steps, ~7 min of wall time on two
workers: ``finetune_epochs`` is the knob.
"""
import dataclasses
import datetime
import json
import logging
import math
import os
import pickle
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from projects.common.runner_cli import load_config
from projects.common.subprocess_steps import Step, StepError, StepPool, StepRunner

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_SCHEMA = 'render-pretrain/transfer-experiment/v1'
INITS = ('scratch', 'pretrained')
INFO_TAG = 'nuscenes'
NUSCENES_METRIC_PREFIX = 'NuScenes metric/pred_instances_3d_NuScenes/'
VERSIONED_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'spconv',
                      'nuscenes-devkit', 'numpy')


class TransferExperimentError(StepError):
    """A step failed, or its output lacks what the experiment needs."""


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

# NS-MAE's label-efficient BEVFusion C+L results on nuScenes val (METHODS.md),
# the reference of both NS-MAE detection chains.
NSMAE_BEVFUSION_REFERENCE = {
    10: 'mAP 54.2 -> 55.9',
    100: 'mAP 60.8 -> 63.0, NDS 64.1 -> 65.5',
}

CHAINS: Dict[str, ChainSpec] = {
    'nsmae-centerpoint': ChainSpec(
        name='nsmae-centerpoint',
        pretrain_config='projects/NSMAE/configs/nsmae_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='mmdet3d-centerpoint', modules=('pts_middle_encoder', ),
        downstream_config='configs/centerpoint/'
        'centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py',
        metric_keys=DETECTION_METRICS, table_metrics=('mAP', 'NDS'),
        paper_reference=NSMAE_BEVFUSION_REFERENCE,
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L on nuScenes val; the paper reports '
        'no LiDAR-only CenterPoint transfer'),
    'mim4d-bevdet': ChainSpec(
        name='mim4d-bevdet',
        pretrain_config='projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_'
        'synthetic-pretrain.py',
        src_layout='mim4d', dst_layout='bevdet',
        modules=('img_backbone', 'img_neck', 'img_view_transformer'),
        downstream_config='configs/bevdet/bevdet-r18_lss_centerhead_1xb2-2e_synthetic-3d.py',
        metric_keys=DETECTION_METRICS, table_metrics=('mAP', 'NDS'),
        paper_reference={
            10: 'n/a',
            100: 'mAP 41.4 (+3.5 over its baseline), NDS 47.0',
        },
        citation='MIM4D (Zou et al. 2024), UVTR-C vs0.075 on nuScenes val; no BEVDet or '
        'label-efficient numbers in the paper'),
    'nsmae-bevseg': ChainSpec(
        name='nsmae-bevseg',
        pretrain_config='projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='bevseg',
        modules=('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                 'fusion_layer'),
        downstream_config='projects/BEVSeg/configs/'
        'bevfusionseg_lidar-cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py',
        metric_keys={'mIoU': 'bev_seg/mIoU'}, table_metrics=('mIoU', ),
        paper_reference={
            10: 'n/a',
            100: 'mIoU 42.9 -> 46.6',
        },
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L BEV map segmentation on nuScenes val; '
        'METHODS.md gives no label-efficient segmentation numbers'),
    'nsmae-bevfusion': ChainSpec(
        name='nsmae-bevfusion',
        pretrain_config='projects/NSMAE/configs/'
        'nsmae_swint-tiny-lss_second_1xb1-2e_synthetic-pretrain.py',
        src_layout='nsmae', dst_layout='mmdet3d-bevfusion',
        modules=('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                 'fusion_layer'),
        downstream_config='configs/bevfusion/'
        'bevfusion_lidar-cam_voxel03-tiny_swint-tiny_second_secfpn_1xb2-2e_synthetic-3d.py',
        metric_keys=DETECTION_METRICS, table_metrics=('mAP', 'NDS'),
        paper_reference=NSMAE_BEVFUSION_REFERENCE,
        citation='NS-MAE (Xu et al. 2023), BEVFusion C+L (256x704, 9 sweeps) on nuScenes val: '
        "the paper's headline transfer; here the stock mmdet3d BEVFusion, tiny",
        needs_mmdet3d_checkout=True),
}


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
    from projects.common.runner_cli import (DEFAULT_MMDET3D_ROOT, MMDET3D_ROOT_ENV,
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


@dataclasses.dataclass
class ExperimentSettings:
    """What to run, and where.

    Attributes:
        world_dir (Path): Synthetic nuScenes data root (generated if absent).
        work_dir (Path): Outputs: configs, checkpoints, logs, step markers.
        info_dir (Path, optional): Folder of the info files (default
            ``world_dir``); created with ``tools/create_data.py`` if absent.
        scenes (int): Scenes of the world (v1.0-mini: <= 10, 20 % val).
        keyframes (int): Key frames per scene.
        resolution (str): Camera ``WxH`` of the world.
        camera_sweeps (int): Camera frames between key frames.
        lidar_sweeps (int): LiDAR sweeps between key frames.
        pretrain_epochs (int): Pre-training epochs (all train frames).
        finetune_epochs (int): Fine-tuning epochs (every fraction and init).
        fractions (tuple[int]): Label percentages of the train split.
        subset_by (str): ``scene`` or ``frame`` (``create_data.py --subset-by``).
        chains (tuple[str]): Keys of :data:`CHAINS`.
        seed (int): Seed of every training run and of the subsets.
        force (bool): Re-run finished steps.
        jobs (int): Steps run at the same time (each its own process).
        threads (int): Intra-op threads of each step (``OMP_NUM_THREADS``,
            ``MKL_NUM_THREADS``). One thread per process and ``jobs`` equal
            to the cores avoids OpenMP threads spinning against other
            processes (measured on 2 shared cores: CenterPoint iterations
            1.1 s -> 7-9 s with 2 threads once another process ran).
        python (str): Interpreter of the subprocesses.
    """

    world_dir: Path
    work_dir: Path
    info_dir: Optional[Path] = None
    scenes: int = 10
    keyframes: int = 12
    resolution: str = '176x64'
    camera_sweeps: int = 2
    lidar_sweeps: int = 2
    pretrain_epochs: int = 4
    finetune_epochs: int = 6
    fractions: Tuple[int, ...] = (10, 100)
    subset_by: str = 'scene'
    chains: Tuple[str, ...] = tuple(CHAINS)
    seed: int = 0
    force: bool = False
    jobs: int = 2
    threads: int = 1
    python: str = sys.executable

    def __post_init__(self):
        self.world_dir = Path(self.world_dir).resolve()
        self.work_dir = Path(self.work_dir).resolve()
        self.info_dir = Path(self.info_dir).resolve() if self.info_dir else self.world_dir
        unknown = [name for name in self.chains if name not in CHAINS]
        if unknown:
            raise ValueError(f'unknown chain(s) {unknown}; available: {sorted(CHAINS)}')
        bad = [p for p in self.fractions if not 0 < p <= 100]
        if bad:
            raise ValueError(f'label fractions must be percentages in (0, 100], got {bad}')
        if min(self.pretrain_epochs, self.finetune_epochs, self.jobs, self.threads) < 1:
            raise ValueError('pretrain_epochs, finetune_epochs, jobs and threads must be >= 1')

    def train_ann(self, percent: Optional[int] = None) -> Path:
        """Info file of the whole train split, or of a label fraction."""
        suffix = '' if percent is None else f'_{percent}pct'
        return self.info_dir / f'{INFO_TAG}_infos_train{suffix}.pkl'

    @property
    def val_ann(self) -> Path:
        return self.info_dir / f'{INFO_TAG}_infos_val.pkl'


# --------------------------------------------------------------- configs


def stretch_schedule(cfg, epochs: int) -> None:
    """Set ``cfg`` to train ``epochs`` epochs and validate at the end.

    Epoch-based parameter schedulers keep their shape: ``begin``, ``end``,
    ``milestones`` and ``T_max`` are scaled by ``epochs / config epochs``
    (rounded, ``end`` at least 1); iteration-based ones (warm-ups) are kept.

    Args:
        cfg (mmengine.Config): A training config, modified in place.
        epochs (int): Epochs to train.
    """
    old = int(cfg.train_cfg.get('max_epochs', epochs))
    scale = epochs / old
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for sched in schedulers:
        if not sched.get('by_epoch', True):
            continue
        for key in ('begin', 'end'):
            if key in sched:
                sched[key] = max(1 if key == 'end' else 0, int(round(sched[key] * scale)))
        if 'milestones' in sched:
            sched['milestones'] = [max(1, int(round(m * scale))) for m in sched['milestones']]
        if 'T_max' in sched:
            sched['T_max'] = max(1, int(round(sched['T_max'] * scale)))
    cfg.train_cfg.max_epochs = epochs
    if 'val_interval' in cfg.train_cfg or cfg.get('val_dataloader'):
        cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=epochs, max_keep_ckpts=1)


def db_info_of(train_ann: Path) -> Path:
    """Ground-truth database of a training info file (subset or full).

    ``X_infos_train_10pct.pkl`` -> ``X_dbinfos_train_10pct.pkl`` (objects of
    that subset's frames only, ``projects.common.gt_database``);
    ``X_infos_train.pkl`` -> ``X_dbinfos_train.pkl``.
    """
    return train_ann.with_name(train_ann.name.replace('_infos_train', '_dbinfos_train', 1))


def point_at_data(cfg, data_root: Path, train_ann: Path, val_ann: Path) -> None:
    """Point every dataset, pipeline step and evaluator of ``cfg`` at the world.

    Args:
        cfg (mmengine.Config): Modified in place.
        data_root (Path): Data root (``data_root`` of datasets and of any
            pipeline step that has one).
        train_ann (Path): Training info file (absolute).
        val_ann (Path): Validation / test info file (absolute).
    """
    root = str(data_root) + '/'
    cfg.pop('gt_database_subset', None)  # the sampler is pointed at the run's database below
    for split, ann in (('train', train_ann), ('val', val_ann), ('test', val_ann)):
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        dataset = loader.dataset
        while 'dataset' in dataset:  # dataset wrappers (CBGSDataset, RepeatDataset)
            dataset = dataset.dataset
        dataset.data_root = root
        dataset.ann_file = str(ann)
        for step in dataset.get('pipeline', []):
            if 'data_root' in step:
                step.data_root = root
            if split == 'train' and 'db_sampler' in step:
                # ObjectSample: the database of the training subset's own frames
                step.db_sampler.data_root = root
                step.db_sampler.info_path = str(db_info_of(train_ann))
        evaluator = cfg.get(f'{split}_evaluator')
        if split != 'train' and evaluator:
            # NuScenesMetric reads the info file; BEVMapSegMetric needs nothing.
            if 'data_root' in evaluator:
                evaluator.data_root = root
            if 'ann_file' in evaluator:
                evaluator.ann_file = str(val_ann)


def write_run_config(src: str, dst: Path, data_root: Path, train_ann: Path, val_ann: Path,
                     epochs: int, seed: int, load_from: Optional[Path] = None,
                     evaluate: bool = True) -> Path:
    """Write ``src`` pointed at the world, with the schedule, seed and init.

    Visualisation hooks are dropped (pictures are not part of the result);
    every iteration is logged (complete loss curves).

    Args:
        src (str): Config file (repository-relative or ``pkg::path``).
        dst (Path): Where to write the resolved config (``.py``).
        data_root (Path): World data root.
        train_ann (Path): Training info file.
        val_ann (Path): Validation info file.
        epochs (int): Training epochs (schedule stretched to them).
        seed (int): ``randomness.seed``.
        load_from (Path, optional): Checkpoint to initialise from.
        evaluate (bool): Keep validation (else ``val_*`` are removed).

    Returns:
        Path: ``dst``.
    """
    path = src if '::' in src else str(REPO_ROOT / src)
    cfg = load_config(path)
    point_at_data(cfg, data_root, train_ann, val_ann)
    stretch_schedule(cfg, epochs)
    if not evaluate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.randomness = dict(seed=seed)
    cfg.load_from = str(load_from) if load_from else None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', [])
                        if not hook['type'].endswith('VisualizationHook')]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(dst))
    return dst


# -------------------------------------------------------- reading logs


def latest_scalars(run_dir: Path) -> Path:
    """``vis_data/scalars.json`` of the newest mmengine run under ``run_dir``.

    Raises:
        TransferExperimentError: If there is none.
    """
    candidates = sorted(Path(run_dir).glob('*/vis_data/scalars.json'))
    if not candidates:
        raise TransferExperimentError(f'no <timestamp>/vis_data/scalars.json under {run_dir}')
    return candidates[-1]


def read_scalars(path: Path) -> List[dict]:
    """Rows of an mmengine ``scalars.json`` (one JSON object per line)."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TransferExperimentError(f'{path}:{number}: not JSON ({err})') from err
    return rows


def find_metric(row: dict, name: str, source: str) -> float:
    """The value of metric ``name`` in a logged row (exact key or ``.../name``).

    Raises:
        TransferExperimentError: If no key or several keys match.
    """
    keys = [key for key in row if key == name or key.endswith('/' + name)]
    if len(keys) != 1:
        raise TransferExperimentError(
            f'{source}: expected one metric key matching {name!r}, found {keys}; '
            f'keys present: {sorted(row)[:20]}')
    return float(row[keys[0]])


def parse_metrics(scalars: Path, metric_keys: Dict[str, str]) -> Dict[str, float]:
    """The last evaluation's metrics in an mmengine ``scalars.json``.

    Args:
        scalars (Path): The file.
        metric_keys (dict[str, str]): Column -> metric name (see
            :attr:`ChainSpec.metric_keys`).

    Returns:
        dict[str, float]: Column -> value.

    Raises:
        TransferExperimentError: If no row holds the metrics.
    """
    names = list(metric_keys.values())
    rows = [row for row in read_scalars(scalars)
            if any(key == n or key.endswith('/' + n) for n in names for key in row)]
    if not rows:
        raise TransferExperimentError(
            f'{scalars}: no evaluation row with {names} (did validation run?)')
    return {column: find_metric(rows[-1], name, str(scalars))
            for column, name in metric_keys.items()}


def loss_curve(scalars: Path) -> dict:
    """First and last training ``loss`` and the number of iterations (logged at every one)."""
    losses = [row for row in read_scalars(scalars) if 'loss' in row]
    if not losses:
        raise TransferExperimentError(f'{scalars}: no training loss logged')
    return dict(loss_first=float(losses[0]['loss']), loss_last=float(losses[-1]['loss']),
                iterations=int(losses[-1].get('step', len(losses))))


def checkpoint_loaded(log: Path, checkpoint: Path) -> bool:
    """Whether the training log reports loading ``checkpoint`` (mmengine ``load_from``)."""
    return f'Load checkpoint from {checkpoint}' in Path(log).read_text(errors='replace')


# ---------------------------------------------------------- the chains


def _tool(*parts: str) -> str:
    return str(REPO_ROOT.joinpath('tools', *parts))


def samples_gt_database(settings: ExperimentSettings) -> bool:
    """Whether a chain's fine-tuning pipeline has ``ObjectSample``.

    Then the info step writes the ground-truth databases (one per subset,
    from that subset's frames only) and :func:`point_at_data` points each
    run at its subset's database.
    """
    for name in settings.chains:
        src = CHAINS[name].downstream_config
        cfg = load_config(src if '::' in src else str(REPO_ROOT / src))
        if 'db_sampler' in str(cfg.get('train_dataloader', {})):
            return True
    return False


def world_steps(settings: ExperimentSettings, work_dir: Path) -> List[Step]:
    """Steps creating the synthetic world and its info files (skipped when present)."""
    steps = []
    tables = settings.world_dir / 'v1.0-mini' / 'scene.json'
    if not tables.is_file() or settings.force:
        steps.append(Step(
            name='world',
            argv=[settings.python, _tool('create_synthetic_nuscenes.py'),
                  '--out-dir', str(settings.world_dir), '--version', 'v1.0-mini',
                  '--scenes', str(settings.scenes), '--keyframes', str(settings.keyframes),
                  '--resolution', settings.resolution,
                  '--camera-sweeps', str(settings.camera_sweeps),
                  '--lidar-sweeps', str(settings.lidar_sweeps),
                  '--seed', str(settings.seed), '--workers', '2'],
            outputs=[tables], log=work_dir / 'world' / 'step.log'))
    with_db = samples_gt_database(settings)
    infos = [settings.val_ann] + [settings.train_ann(p) for p in settings.fractions]
    if with_db:
        infos += [db_info_of(settings.train_ann(p)) for p in settings.fractions]
    if not all(path.is_file() for path in infos) or settings.force:
        steps.append(Step(
            name='infos',
            argv=[settings.python, _tool('create_data.py'), 'nuscenes',
                  '--root-path', str(settings.world_dir), '--out-dir', str(settings.info_dir),
                  '--extra-tag', INFO_TAG, '--version', 'v1.0-mini',
                  '--max-sweeps', str(settings.lidar_sweeps),
                  '--max-cam-sweeps', str(settings.camera_sweeps),
                  '--subsets', ','.join(str(p) for p in settings.fractions),
                  '--subset-by', settings.subset_by, '--seed', str(settings.seed)]
            + ([] if with_db else ['--no-gt-database']),
            outputs=infos, log=work_dir / 'infos' / 'step.log'))
    return steps


def _train_step(settings: ExperimentSettings, name: str, config: Path, run_dir: Path,
                epochs: int, inputs: Sequence[Path]) -> Step:
    return Step(name=name,
                argv=[settings.python, _tool('train.py'), str(config), '--work-dir', str(run_dir)],
                outputs=[run_dir / f'epoch_{epochs}.pth'], log=run_dir / 'step.log',
                inputs=list(inputs))


@dataclasses.dataclass
class ChainPlan:
    """The steps of one chain, configs written, nothing run yet.

    Attributes:
        spec (ChainSpec): The chain.
        pretrain (Step): Pre-training on all train frames.
        convert (Step): Strict conversion of the last pre-training checkpoint.
        converted (Path): The converted checkpoint.
        finetunes (list[tuple[int, str, Step]]): (percent, init, step).
    """

    spec: ChainSpec
    pretrain: Step
    convert: Step
    converted: Path
    finetunes: List[Tuple[int, str, Step]]


def plan_chain(spec: ChainSpec, settings: ExperimentSettings) -> ChainPlan:
    """Write the configs of one chain and return its steps.

    Run folders carry the schedule and seed in their names
    (``<chain>/pretrain-pt4e-seed0``, ``<chain>/10pct-pretrained-ft12e-pt4e-seed0``),
    so results of other settings are never mistaken for these.
    """
    chain_dir = settings.work_dir / spec.name
    seed_tag = f'seed{settings.seed}'
    pre_tag = f'pt{settings.pretrain_epochs}e-{seed_tag}'
    pre_dir = chain_dir / f'pretrain-{pre_tag}'
    pre_cfg = write_run_config(spec.pretrain_config, pre_dir / 'config.py', settings.world_dir,
                               settings.train_ann(), settings.val_ann, settings.pretrain_epochs,
                               settings.seed, evaluate=False)
    pretrain = _train_step(settings, f'{spec.name}-pretrain-{pre_tag}', pre_cfg, pre_dir,
                           settings.pretrain_epochs, [settings.train_ann()])
    down_cfg = spec.downstream_config
    converted = chain_dir / f'converted-{pre_tag}.pth'
    convert = Step(
        name=f'{spec.name}-convert-{pre_tag}',
        argv=[settings.python, _tool('model_converters', 'convert_checkpoint.py'),
              str(pretrain.outputs[0]), str(converted), '--src-layout', spec.src_layout,
              '--dst-layout', spec.dst_layout, '--modules', ','.join(spec.modules), '--strict',
              '--target-config', down_cfg if '::' in down_cfg else str(REPO_ROOT / down_cfg),
              '--overwrite'],
        outputs=[converted], log=chain_dir / f'convert-{pre_tag}.log')
    finetunes = []
    for percent in settings.fractions:
        for init in INITS:
            load_from = converted if init == 'pretrained' else None
            tag = f'{percent}pct-{init}-ft{settings.finetune_epochs}e-'
            tag += pre_tag if load_from else seed_tag
            run_dir = chain_dir / tag
            cfg_path = write_run_config(down_cfg, run_dir / 'config.py', settings.world_dir,
                                        settings.train_ann(percent), settings.val_ann,
                                        settings.finetune_epochs, settings.seed, load_from)
            inputs = [settings.train_ann(percent), settings.val_ann] + (
                [converted] if load_from else [])
            finetunes.append((percent, init, _train_step(
                settings, f'{spec.name}-{tag}', cfg_path, run_dir, settings.finetune_epochs,
                inputs)))
    return ChainPlan(spec=spec, pretrain=pretrain, convert=convert, converted=converted,
                     finetunes=finetunes)


def finetune_record(plan: ChainPlan, percent: int, init: str, step: Step, outcome: dict,
                    settings: ExperimentSettings) -> dict:
    """The result record of one fine-tuning run (metrics read from its logs).

    Raises:
        TransferExperimentError: If the metrics are absent, or a pre-trained
            run's log does not report loading the converted checkpoint.
    """
    run_dir = step.log.parent
    scalars = latest_scalars(run_dir)
    pretrained = init == 'pretrained'
    loaded = checkpoint_loaded(step.log, plan.converted) if pretrained else None
    if pretrained and not loaded:
        raise TransferExperimentError(
            f'{step.log}: no "Load checkpoint from {plan.converted}" line: the converted '
            'weights were not loaded')
    return dict(chain=plan.spec.name, init=init, fraction=percent, seed=settings.seed,
                epochs=settings.finetune_epochs,
                metrics=parse_metrics(scalars, plan.spec.metric_keys), wall_s=outcome['wall_s'],
                load_from=str(plan.converted) if pretrained else None, checkpoint_loaded=loaded,
                train_ann=str(settings.train_ann(percent)), work_dir=str(run_dir),
                **loss_curve(scalars))


# ------------------------------------------------------------- results


def package_versions() -> Dict[str, Optional[str]]:
    """Installed versions of the packages the result depends on."""
    versions = {'python': platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict:
    """Commit of the repository and whether the tree has local changes."""
    def git(*args):
        out = subprocess.run(['git', *args], cwd=REPO_ROOT, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None
    status = git('status', '--porcelain', '--untracked-files=no')
    return dict(commit=git('rev-parse', 'HEAD'), dirty=bool(status) if status is not None else None)


def world_summary(settings: ExperimentSettings) -> dict:
    """Size of the world and of each label fraction (frames, scenes)."""
    out = dict(data_root=str(settings.world_dir), version='v1.0-mini')
    meta = settings.world_dir / 'synthetic_world.json'
    if meta.is_file():
        world = json.loads(meta.read_text())
        out.update(scenes=world.get('num_scenes'), keyframes=world.get('keyframes_per_scene'),
                   resolution=world.get('image_size'))
    fractions = {}
    for percent in settings.fractions:
        entries = pickle.loads(settings.train_ann(percent).read_bytes())['data_list']
        fractions[str(percent)] = dict(frames=len(entries))
        manifest = settings.train_ann(percent).with_suffix('.json')
        if manifest.is_file():  # written by create_data.py: scenes, seed, counts
            info = json.loads(manifest.read_text())
            info.pop('sample_tokens', None)
            fractions[str(percent)]['manifest'] = info
    out['train_frames'] = len(pickle.loads(settings.train_ann().read_bytes())['data_list'])
    out['val_frames'] = len(pickle.loads(settings.val_ann.read_bytes())['data_list'])
    out['fractions'] = fractions
    out['subset_by'] = settings.subset_by
    return out


def run_experiment(settings: ExperimentSettings,
                   progress: Optional[Callable[[str], None]] = None,
                   emit: Optional[Callable[[dict], None]] = None) -> dict:
    """Run (or resume) the whole experiment.

    The world and info steps run first; then, ``settings.jobs`` at a time,
    the pre-trainings, the scratch fine-tunings (which need no pre-training),
    the conversions and the pre-trained fine-tunings.

    Args:
        settings (ExperimentSettings): What to run.
        progress (callable, optional): Receives one progress line per step.
        emit (callable, optional): Receives each fine-tuning record (in
            chain, fraction, init order).

    Returns:
        dict: The results (schema :data:`RESULTS_SCHEMA`): ``settings``,
        ``world``, ``chains`` (per chain: spec, pre-training, conversion),
        ``runs`` (one record per fine-tuning run), ``wall_s`` (this
        invocation), ``steps_wall_s`` (sum over steps, including those run
        by earlier invocations), ``versions``, ``git``.
    """
    begin = time.monotonic()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    runner = StepRunner(settings.work_dir, REPO_ROOT, settings.force, progress, settings.threads)
    # before any config is read: the world steps read the chains' configs (gt databases)
    find_mmdet3d_checkout(settings.chains)
    step_walls = [runner.run(step)['wall_s'] for step in world_steps(settings, settings.work_dir)]
    plans = [plan_chain(CHAINS[name], settings) for name in settings.chains]
    pool = StepPool(runner, settings.jobs)
    try:
        pre = {plan.spec.name: pool.submit(plan.pretrain) for plan in plans}
        fine = {(plan.spec.name, percent, init): pool.submit(step)
                for percent in sorted(settings.fractions, reverse=True) for plan in plans
                for p, init, step in plan.finetunes if p == percent and init == 'scratch'}
        conv = {plan.spec.name: pool.submit(plan.convert, [pre[plan.spec.name]])
                for plan in plans}
        fine.update({(plan.spec.name, percent, init): pool.submit(step, [conv[plan.spec.name]])
                     for percent in sorted(settings.fractions, reverse=True) for plan in plans
                     for p, init, step in plan.finetunes if p == percent and init != 'scratch'})
        chains, runs = {}, []
        for plan in plans:
            name = plan.spec.name
            pre_out, conv_out = pre[name].result(), conv[name].result()
            chains[name] = dict(
                spec=plan.spec.summary(),
                pretrain=dict(wall_s=pre_out['wall_s'], epochs=settings.pretrain_epochs,
                              checkpoint=str(plan.pretrain.outputs[0]),
                              **loss_curve(latest_scalars(plan.pretrain.log.parent))),
                convert=dict(wall_s=conv_out['wall_s'], checkpoint=str(plan.converted)))
            step_walls += [pre_out['wall_s'], conv_out['wall_s']]
            for percent, init, step in plan.finetunes:
                record = finetune_record(plan, percent, init, step,
                                         fine[(name, percent, init)].result(), settings)
                runs.append(record)
                step_walls.append(record['wall_s'])
                if emit:
                    emit(record)
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()
    plain = dataclasses.asdict(settings)
    plain.update(world_dir=str(settings.world_dir), work_dir=str(settings.work_dir),
                 info_dir=str(settings.info_dir), fractions=list(settings.fractions),
                 chains=list(settings.chains))
    return dict(schema=RESULTS_SCHEMA, created=datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec='seconds'), settings=plain,
        world=world_summary(settings), chains=chains, runs=runs,
        wall_s=time.monotonic() - begin, steps_wall_s=sum(step_walls),
        versions=package_versions(), git=git_state(), cpu_count=os.cpu_count())


def check_results(results: dict) -> None:
    """Validate the results' schema; every metric must be finite and in [0, 1].

    Raises:
        TransferExperimentError: Naming the first problem found.
    """
    if results.get('schema') != RESULTS_SCHEMA:
        raise TransferExperimentError(
            f'results schema {results.get("schema")!r}, expected {RESULTS_SCHEMA!r}')
    for key in ('settings', 'world', 'chains', 'runs', 'versions', 'git'):
        if key not in results:
            raise TransferExperimentError(f'results lack {key!r}')
    for run in results['runs']:
        for key in ('chain', 'init', 'fraction', 'seed', 'epochs', 'metrics', 'wall_s'):
            if key not in run:
                raise TransferExperimentError(f'run record lacks {key!r}: {run}')
        if run['chain'] not in results['chains']:
            raise TransferExperimentError(f'run of unknown chain {run["chain"]!r}')
        for name, value in run['metrics'].items():
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise TransferExperimentError(
                    f'{run["chain"]} {run["fraction"]} % {run["init"]}: {name} = {value}')


def save_results(results: dict, path: Path) -> Path:
    """Write the results as JSON (creating folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + '.tmp')
    tmp.write_text(json.dumps(results, indent=1))
    shutil.move(str(tmp), str(path))
    return path


def parse_fractions(values: Sequence[str]) -> Tuple[int, ...]:
    """Percentages from the command line (``10 100`` or ``10,100``)."""
    out = []
    for value in values:
        out += [int(part) for part in str(value).split(',') if part]
    return tuple(out)
