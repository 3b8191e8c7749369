"""Config rewriting of the transfer experiment's training steps.

The config of each training step is the stock / tiny config pointed at the
experiment's world, label subset and schedule, written next to the step's
outputs (``config.py``) so that any step can be re-run by hand with
``tools/train.py``. A config's epoch-based schedule is stretched to the
requested epochs; iteration-based warm-ups are kept.
"""
from pathlib import Path
from typing import Optional

from tools.utils.runner_cli import load_config

REPO_ROOT = Path(__file__).resolve().parents[2]


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
    that subset's frames only, ``tools.utils.gt_database``);
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
                     evaluate: bool = True, validate_first: bool = False) -> Path:
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
        validate_first (bool): Also validate before the first training step
            (``ValidateBeforeTrainHook``, logged at ``step`` 0), e.g. the
            held-out render quality at the start of a pre-training.

    Returns:
        Path: ``dst``.
    """
    path = src if '::' in src else str(REPO_ROOT / src)
    cfg = load_config(path)
    point_at_data(cfg, data_root, train_ann, val_ann)
    stretch_schedule(cfg, epochs)
    if validate_first and not evaluate:
        raise ValueError('write_run_config: validate_first needs evaluate=True')
    if validate_first and not cfg.get('val_evaluator'):
        raise ValueError(f'{path}: validate_first needs a val_evaluator')
    if not evaluate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.randomness = dict(seed=seed)
    cfg.load_from = str(load_from) if load_from else None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [hook for hook in cfg.get('custom_hooks', [])
                        if not hook['type'].endswith('VisualizationHook')]
    if validate_first:
        cfg.custom_hooks.append(dict(type='ValidateBeforeTrainHook'))
    dst.parent.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(dst))
    return dst
