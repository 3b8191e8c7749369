"""The label-efficient transfer experiment: plan, run and record every chain.

Every step is one of the project's own command-line tools run as a
subprocess (``tools/create_synthetic_nuscenes.py``, ``tools/create_data.py``,
``tools/train.py``, ``tools/model_converters/convert_checkpoint.py``), with
its output in ``<work_dir>/.../step.log``; a finished step (marker
``<work_dir>/steps/<name>.json`` plus its outputs) is skipped on a re-run
unless ``force``, so an interrupted run continues where it stopped. The
chains are :data:`tools.transfer.chains.CHAINS`; each fine-tuning run is
evaluated at its end (``NuScenesMetric`` mAP / NDS, or BEV mIoU); each
pre-training is validated before its first step and after its last epoch
(held-out render PSNR / depth error, ``RenderQualityMetric``).

Sizing: steps run ``jobs`` at a time, one intra-op thread each (``threads``):
two OpenMP threads per process on cores shared with other processes spin
against each other. ``finetune_epochs`` and ``seeds`` are the knobs of the
total cost (every chain, fraction, init and seed trains that many epochs;
pre-training runs once per chain); :func:`plan_experiment` lists the steps
and their iterations without running them (``--plan``); the step wall times
of each run are in its results (``docs/results/transfer_history.jsonl``).
The defaults (4 pre-training and 3 fine-tuning epochs, 3 seeds, six chains,
10 scenes x 12 key frames) are sized for the 150-minute wall-time budget of
one working session on 2 cores (#25); the README says what they reach.
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

from tools.transfer.chains import CHAINS, ChainSpec, find_mmdet3d_checkout  # noqa: F401
from tools.transfer.configs import db_info_of, write_run_config
from tools.transfer.metrics import (checkpoint_loaded, latest_scalars, loss_curve, parse_metrics,
                                    render_quality)
from tools.transfer.steps import Step, StepPool, StepRunner, TransferExperimentError
from tools.utils.runner_cli import load_config

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_SCHEMA = 'render-pretrain/transfer-experiment/v1'
INITS = ('scratch', 'pretrained')
INFO_TAG = 'nuscenes'
VERSIONED_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'spconv',
                      'nuscenes-devkit', 'numpy')


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
        seed (int): Seed of the world, of the label subsets and of each
            chain's one pre-training; the first fine-tuning seed.
        seeds (int): Fine-tuning seeds ``seed, seed + 1, ...``: every
            (chain, fraction, init) cell runs once per seed (the seed sets
            ``randomness.seed``: init of the new layers, data order); the
            scratch and pre-trained runs of a seed are a pair.
        force (bool): Re-run finished steps.
        jobs (int): Steps run at the same time (each its own process).
        threads (int): Intra-op threads of each step (``OMP_NUM_THREADS``,
            ``MKL_NUM_THREADS``). One thread per process and ``jobs`` equal
            to the cores avoids OpenMP threads spinning against other
            processes.
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
    finetune_epochs: int = 3
    fractions: Tuple[int, ...] = (10, 100)
    subset_by: str = 'scene'
    chains: Tuple[str, ...] = tuple(CHAINS)
    seed: int = 0
    seeds: int = 3
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
        if min(self.pretrain_epochs, self.finetune_epochs, self.seeds, self.jobs,
               self.threads) < 1:
            raise ValueError(
                'pretrain_epochs, finetune_epochs, seeds, jobs and threads must be >= 1')

    @property
    def finetune_seeds(self) -> Tuple[int, ...]:
        """Seeds of the fine-tuning runs: ``seed, ..., seed + seeds - 1``."""
        return tuple(range(self.seed, self.seed + self.seeds))

    def train_ann(self, percent: Optional[int] = None) -> Path:
        """Info file of the whole train split, or of a label fraction."""
        suffix = '' if percent is None else f'_{percent}pct'
        return self.info_dir / f'{INFO_TAG}_infos_train{suffix}.pkl'

    @property
    def val_ann(self) -> Path:
        return self.info_dir / f'{INFO_TAG}_infos_val.pkl'


# --------------------------------------------------------------- configs


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
        finetunes (list[tuple[int, str, int, Step]]): (percent, init, seed,
            step) in fraction, seed, init order.
    """

    spec: ChainSpec
    pretrain: Step
    convert: Step
    converted: Path
    finetunes: List[Tuple[int, str, int, Step]]


def finetune_tag(settings: ExperimentSettings, percent: int, init: str, seed: int) -> str:
    """Run folder / step name of one fine-tuning run (without the chain).

    Scratch: ``10pct-scratch-ft3e-seed1``. Pre-trained: the pre-training's
    tag (``pt4e-seed0``: its epochs and seed) and, when the fine-tuning seed
    differs from the pre-training's, ``-ftseed<seed>``:
    ``10pct-pretrained-ft3e-pt4e-seed0`` (seed 0, the name single-seed runs
    always had, so their finished steps are reused) and
    ``10pct-pretrained-ft3e-pt4e-seed0-ftseed1``.
    """
    tag = f'{percent}pct-{init}-ft{settings.finetune_epochs}e-'
    if init == 'scratch':
        return tag + f'seed{seed}'
    tag += f'pt{settings.pretrain_epochs}e-seed{settings.seed}'  # as plan_chain's pre_tag
    return tag if seed == settings.seed else tag + f'-ftseed{seed}'


def pretrain_owner(spec: ChainSpec) -> str:
    """The chain whose folder and step name hold ``spec``'s pre-training.

    Chains with the same pre-training config (``mim4d-bevdet`` and
    ``mim4d-bevseg``) share one pre-training run: that of the first such
    chain in :data:`CHAINS` (whichever chains are selected, so a later run
    of other chains finds it), else ``spec`` itself.
    """
    return next((name for name, other in CHAINS.items()
                 if other.pretrain_config == spec.pretrain_config), spec.name)


def plan_chain(spec: ChainSpec, settings: ExperimentSettings) -> ChainPlan:
    """Write the configs of one chain and return its steps.

    Pre-training runs once (seed ``settings.seed``) in the folder of
    :func:`pretrain_owner` (chains with the same pre-training config share
    it); each fraction and init is fine-tuned once per seed of
    ``settings.finetune_seeds``. Run folders carry the schedule and seeds in
    their names (``<chain>/pretrain-pt4e-seed0``, :func:`finetune_tag`), so
    results of other settings are never mistaken for these.
    """
    chain_dir = settings.work_dir / spec.name
    pre_tag = f'pt{settings.pretrain_epochs}e-seed{settings.seed}'
    owner = pretrain_owner(spec)
    pre_dir = settings.work_dir / owner / f'pretrain-{pre_tag}'
    pre_cfg = write_run_config(spec.pretrain_config, pre_dir / 'config.py', settings.world_dir,
                               settings.train_ann(), settings.val_ann, settings.pretrain_epochs,
                               settings.seed, validate_first=True)
    pretrain = _train_step(settings, f'{owner}-pretrain-{pre_tag}', pre_cfg, pre_dir,
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
        for seed in settings.finetune_seeds:
            for init in INITS:
                load_from = converted if init == 'pretrained' else None
                tag = finetune_tag(settings, percent, init, seed)
                run_dir = chain_dir / tag
                cfg_path = write_run_config(down_cfg, run_dir / 'config.py', settings.world_dir,
                                            settings.train_ann(percent), settings.val_ann,
                                            settings.finetune_epochs, seed, load_from)
                inputs = [settings.train_ann(percent), settings.val_ann] + (
                    [converted] if load_from else [])
                finetunes.append((percent, init, seed, _train_step(
                    settings, f'{spec.name}-{tag}', cfg_path, run_dir,
                    settings.finetune_epochs, inputs)))
    return ChainPlan(spec=spec, pretrain=pretrain, convert=convert, converted=converted,
                     finetunes=finetunes)


def finetune_record(plan: ChainPlan, percent: int, init: str, seed: int, step: Step,
                    outcome: dict, settings: ExperimentSettings) -> dict:
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
    return dict(chain=plan.spec.name, init=init, fraction=percent, seed=seed,
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
    the conversions and the pre-trained fine-tunings; fine-tunings by seed,
    then by fraction (largest first), then by chain.

    Args:
        settings (ExperimentSettings): What to run.
        progress (callable, optional): Receives one progress line per step
            event; after the world steps, each line holds the overall count
            and ETA (:class:`StepRunner`).
        emit (callable, optional): Receives each fine-tuning record (in
            chain, fraction, seed, init order).

    Returns:
        dict: The results (schema :data:`RESULTS_SCHEMA`): ``settings``,
        ``world``, ``chains`` (per chain: spec, pre-training, conversion),
        ``runs`` (one record per fine-tuning run), ``wall_s`` (this
        invocation), ``steps_wall_s`` (sum over steps, including those run
        by earlier invocations), ``versions``, ``git``.
    """
    begin = time.monotonic()
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    runner = StepRunner(settings.work_dir, REPO_ROOT, settings.force, progress, settings.threads,
                        jobs=settings.jobs)
    # before any config is read: the world steps read the chains' configs (gt databases)
    find_mmdet3d_checkout(settings.chains)
    step_walls = [runner.run(step)['wall_s'] for step in world_steps(settings, settings.work_dir)]
    plans = [plan_chain(CHAINS[name], settings) for name in settings.chains]
    # overall count and ETA in every later progress line (the world steps ran already)
    runner.total = (len(step_walls) + len({plan.pretrain.name for plan in plans})
                    + sum(1 + len(plan.finetunes) for plan in plans))
    pool = StepPool(runner, settings.jobs)
    try:
        shared = {}  # one pre-training run per config (pretrain_owner)
        for plan in plans:
            if plan.pretrain.name not in shared:
                shared[plan.pretrain.name] = pool.submit(plan.pretrain)
        pre = {plan.spec.name: shared[plan.pretrain.name] for plan in plans}
        order = [(seed, percent) for seed in settings.finetune_seeds
                 for percent in sorted(settings.fractions, reverse=True)]
        fine = {(plan.spec.name, percent, init, seed): pool.submit(step)
                for seed, percent in order for plan in plans
                for p, init, s, step in plan.finetunes
                if (p, s) == (percent, seed) and init == 'scratch'}
        conv = {plan.spec.name: pool.submit(plan.convert, [pre[plan.spec.name]])
                for plan in plans}
        fine.update({(plan.spec.name, percent, init, seed):
                     pool.submit(step, [conv[plan.spec.name]])
                     for seed, percent in order for plan in plans
                     for p, init, s, step in plan.finetunes
                     if (p, s) == (percent, seed) and init != 'scratch'})
        chains, runs = {}, []
        for plan in plans:
            name = plan.spec.name
            pre_out, conv_out = pre[name].result(), conv[name].result()
            pre_scalars = latest_scalars(plan.pretrain.log.parent)
            chains[name] = dict(
                spec=plan.spec.summary(),
                pretrain=dict(wall_s=pre_out['wall_s'], epochs=settings.pretrain_epochs,
                              seed=settings.seed,
                              checkpoint=str(plan.pretrain.outputs[0]),
                              step=plan.pretrain.name,
                              render_quality=render_quality(pre_scalars),
                              **loss_curve(pre_scalars)),
                convert=dict(wall_s=conv_out['wall_s'], checkpoint=str(plan.converted)))
            step_walls += [pre_out['wall_s']] if shared.pop(plan.pretrain.name, None) else []
            step_walls.append(conv_out['wall_s'])
            for percent, init, seed, step in plan.finetunes:
                record = finetune_record(plan, percent, init, seed, step,
                                         fine[(name, percent, init, seed)].result(), settings)
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
                 chains=list(settings.chains), finetune_seeds=list(settings.finetune_seeds))
    return dict(schema=RESULTS_SCHEMA, created=datetime.datetime.now(
        datetime.timezone.utc).isoformat(timespec='seconds'), settings=plain,
        world=world_summary(settings), chains=chains, runs=runs,
        wall_s=time.monotonic() - begin, steps_wall_s=sum(step_walls),
        versions=package_versions(), git=git_state(), cpu_count=os.cpu_count())


# ------------------------------------------------------------ dry run


def expected_frames(settings: ExperimentSettings) -> Dict[Optional[int], int]:
    """Training frames of the whole train split (key None) and of each fraction.

    Read from the info files when they exist, else predicted from the world
    settings as ``create_synthetic_nuscenes.py`` and ``create_data.py``
    would make them (v1.0-mini: about 20 % of the scenes are val; a fraction
    keeps ``max(1, round(percent % of the train scenes or frames))``).

    Returns:
        dict: ``{None: train frames, percent: frames, ...}``.
    """
    from render_pretrain.nuscenes_infos.subsets import subset_size
    from render_pretrain.synthetic.nuscenes_tables import scene_names
    from nuscenes.utils import splits
    out = {}
    for percent in (None, ) + tuple(settings.fractions):
        path = settings.train_ann(percent)
        if path.is_file():
            out[percent] = len(pickle.loads(path.read_bytes())['data_list'])
    if len(out) == 1 + len(settings.fractions):
        return out
    names = scene_names('v1.0-mini', settings.scenes)
    train_scenes = sum(1 for name in names if name in splits.mini_train)
    total = train_scenes * settings.keyframes
    out = {None: total}
    for percent in settings.fractions:
        if settings.subset_by == 'scene':
            out[percent] = subset_size(percent, train_scenes) * settings.keyframes
        else:
            out[percent] = subset_size(percent, total)
    return out


def plan_experiment(settings: ExperimentSettings) -> List[dict]:
    """The steps a run would execute, with their size, without running any.

    Writes the run configs (as a run would; they are re-written identically
    by it) but runs nothing. Training iterations are ``epochs x
    ceil(frames / batch)`` (mmengine's ``DefaultSampler`` keeps the last
    partial batch), with the batch size of the step's config.

    Args:
        settings (ExperimentSettings): What a run would run.

    Returns:
        list[dict]: One row per step: ``name``, ``kind`` (world, infos,
        pretrain, convert, finetune), ``frames``, ``epochs``, ``batch``,
        ``iterations`` (None for steps that do not train), ``seed`` and
        ``done`` (finished before with the same command and inputs: a run
        would skip it).
    """
    from tools.transfer.steps import step_fingerprint
    find_mmdet3d_checkout(settings.chains)
    frames = expected_frames(settings)
    markers = settings.work_dir / 'steps'

    def done(step):
        marker = markers / f'{step.name}.json'
        return (not settings.force and marker.is_file()
                and all(path.exists() for path in step.outputs)
                and json.loads(marker.read_text()).get('fingerprint') == step_fingerprint(step))

    def batch_of(step):
        loader = load_config(step.argv[2]).train_dataloader
        if 'dataset' in loader.dataset:
            raise TransferExperimentError(
                f'{step.argv[2]}: train dataset wrapped in {loader.dataset.get("type")}: its '
                'length is not the frame count; the plan cannot size it')
        return int(loader.batch_size)

    def row(step, kind, count=None, epochs=None, seed=None, batch=None):
        iterations = None if count is None else epochs * math.ceil(count / batch)
        return dict(name=step.name, kind=kind, frames=count, epochs=epochs, batch=batch,
                    iterations=iterations, seed=seed, done=done(step))

    rows = [row(step, step.name) for step in world_steps(settings, settings.work_dir)]
    pretrained = set()  # chains sharing a pre-training config share its run (pretrain_owner)
    for name in settings.chains:
        plan = plan_chain(CHAINS[name], settings)
        if plan.pretrain.name not in pretrained:
            pretrained.add(plan.pretrain.name)
            rows.append(row(plan.pretrain, 'pretrain', frames[None], settings.pretrain_epochs,
                            settings.seed, batch_of(plan.pretrain)))
        rows.append(row(plan.convert, 'convert'))
        batch = batch_of(plan.finetunes[0][-1])  # one downstream config for every fine-tuning
        rows += [row(step, 'finetune', frames[percent], settings.finetune_epochs, seed, batch)
                 for percent, init, seed, step in plan.finetunes]
    return rows


def format_plan(rows: Sequence[dict]) -> str:
    """The plan as text: one line per step, then the totals of the steps to run."""
    lines = []
    for r in rows:
        state = 'done (skipped)' if r['done'] else 'to run'
        size = (f'{r["iterations"]:6d} iterations = {r["epochs"]} epochs x '
                f'ceil({r["frames"]} frames / batch {r["batch"]})'
                if r['iterations'] is not None else '')
        lines.append(f'{r["name"]:<60s} {state:<15s} {size}'.rstrip())
    todo = [r for r in rows if not r['done']]
    total = sum(r['iterations'] or 0 for r in todo)
    by_kind = {kind: sum(r['iterations'] or 0 for r in todo if r['kind'] == kind)
               for kind in ('pretrain', 'finetune')}
    lines.append(f'{len(todo)} of {len(rows)} steps to run; {total} training iterations '
                 f'({by_kind["pretrain"]} pre-training, {by_kind["finetune"]} fine-tuning)')
    return '\n'.join(lines) + '\n'


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
