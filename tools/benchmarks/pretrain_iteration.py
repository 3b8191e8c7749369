"""Benchmark pre-training iterations of the tiny configs; one JSON line per measurement.

For each ``--config`` (default: the NS-MAE camera+LiDAR and the MIM4D tiny
configs) the model, its optimizer wrapper and its train dataloader are built
from the config (``custom_imports``, mmdet3d registries,
``Runner.build_dataloader``) on a synthetic world, and ``--warmup`` +
``--iters`` training iterations are run with mmengine semantics
(``model.train_step``: data preprocessor, ``loss``, backward, optimizer
step). Reported per config:

* ``iter_s`` (mean / median): wall time of ``train_step``, data loading
  excluded; ``data_s``: wall time of fetching the batch from the dataloader;
  ``cpu_s``: process CPU time (all threads) per ``train_step``, and
  ``cpu_per_wall`` (< threads when the shared machine is oversubscribed);
* ``peak_rss_mb``: ``getrusage(RUSAGE_SELF).ru_maxrss`` after the run, and
  ``peak_rss_delta_mb``: its growth from just before the first iteration
  (model and dataloader already built), i.e. what the iterations add;
* ``render_head_s`` / ``render_head_share``: the render heads' time per
  iteration and its share of ``iter_s`` (median over iterations), with the
  NS-MAE target (at most 15 %) checked in ``meets_target``.

Every record also carries the fields ``tools/benchmarks/report.py``
renders: ``title``, ``workload``, ``figures`` (name, value, unit),
``target`` (a figure, ``<=`` / ``>=`` / ``>`` and a limit, or None) and
``target_met``.

Render-head timing method (isolated): after each timed iteration, the same
batch is preprocessed and ``model.extract_feat`` is run once more; every
feature that requires grad is detached into a new leaf, ``extract_feat`` is
shadowed on the instance to return these cached features, and
``model.loss`` + backward of the summed loss are timed. That covers
everything ``loss`` does after the encoders (render heads' forward, their
targets, e.g. the NS-MAE BEV first-hit height, their losses and their
backward down to the encoder features), i.e. exactly the work the heads add
to an iteration. The gradients are then zeroed and the optimizer is not
stepped, so the timed iterations are not affected.

``--loss-curve`` instead trains with ``tools/train.py`` semantics
(``Runner.from_cfg``, the config's schedule and optimizer; the
visualisation hooks and checkpoints are off) for the config's epochs or
``--epochs``, stopped after ``--time-limit`` seconds, and reports the
first and last logged value of every loss term (and the means of the first
and last ``--window`` iterations). Its target: the total loss drops
within the budget (default 600 s, ``--time-limit``).

The world is generated in a temporary folder
(``render_pretrain.synthetic.generate_world`` at 704x256, the resolution
the tiny configs expect, and ``create_nuscenes_infos``), or read from
``--data-root`` (e.g. ``data/synthetic`` from ``make demo``).

Usage:
    python tools/benchmarks/pretrain_iteration.py [--config CFG ...] [--iters 5]
    python tools/benchmarks/pretrain_iteration.py --data-root data/synthetic
    python tools/benchmarks/pretrain_iteration.py --loss-curve --time-limit 600
"""
import argparse
import contextlib
import json
import multiprocessing
import os
import os.path as osp
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmengine.runner import Runner, set_random_seed  # noqa: E402

from tools.utils import apply_common_overrides, load_config, prepare_registries  # noqa: E402

DEFAULT_CONFIGS = (
    'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
    'projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py',
)
# Render-head share targets per detector type (issue: NS-MAE <= 15 %).
RENDER_HEAD_SHARE_TARGETS = {'NSMAE': 0.15}
# A small world at the resolution of the tiny configs (their pipelines
# resize 704x256 images to 176x64): 2 train + 1 val scenes, 2 camera sweeps
# between key frames (MIM4D reads 3 camera frames).
WORLD_PARAMS = dict(version='v1.0-mini', num_scenes=3, keyframes_per_scene=3,
                    image_size=(704, 256), camera_sweeps=2, lidar_sweeps=2,
                    lidar_azimuth_steps=1084, seed=0)
CAM_SWEEPS = 2
MB = 1024.0  # ru_maxrss is in KiB on Linux


def generate_synthetic_data(out_dir: Path) -> Path:
    """Generate the small synthetic world and its info files.

    Args:
        out_dir (Path): Folder to create the data root in.

    Returns:
        Path: The data root (holds ``nuscenes_infos_train.pkl``).
    """
    from render_pretrain.nuscenes_infos import create_nuscenes_infos
    from render_pretrain.synthetic import generate_world
    root = generate_world(Path(out_dir) / 'synthetic', **WORLD_PARAMS)
    create_nuscenes_infos(root, root, extra_tag='nuscenes', version=WORLD_PARAMS['version'],
                          max_cam_sweeps=CAM_SWEEPS, subsets=(100, ), seed=0,
                          progress=False)
    return Path(root)


def _set_data_root(node, data_root: str) -> None:
    """Replace every ``data_root`` entry (dataset and pipeline steps) in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_root':
                node[key] = data_root
            else:
                _set_data_root(value, data_root)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _set_data_root(value, data_root)


def prepare_config(config: str, data_root: Optional[str] = None,
                   ann_file: Optional[str] = None,
                   cfg_options: Optional[dict] = None) -> Config:
    """Load a pre-training config, import its modules and point it at the data.

    Args:
        config (str): Config file (or ``package::path``).
        data_root (str, optional): Replaces every ``data_root`` in
            ``train_dataloader`` (dataset and pipeline steps).
        ann_file (str, optional): Info file of the innermost train dataset
            (relative to ``data_root`` or absolute).
        cfg_options (dict, optional): ``--cfg-options`` overrides.

    Returns:
        Config: The config, with the default scope initialised.
    """
    cfg = prepare_registries(load_config(config, cfg_options))
    if 'train_dataloader' not in cfg:
        raise KeyError(f'{config}: no train_dataloader; expected a pre-training config')
    if data_root is not None:
        _set_data_root(cfg.train_dataloader, osp.join(str(data_root), ''))
    if ann_file is not None:
        dataset = cfg.train_dataloader.dataset
        while 'dataset' in dataset and 'ann_file' not in dataset:
            dataset = dataset.dataset
        dataset.ann_file = str(ann_file)
    # the benchmarks measure training: no validation loop (it reads the val split)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def _detach_features(feats):
    """Copy of an ``extract_feat`` output whose grad-requiring tensors are new leaves."""
    if isinstance(feats, torch.Tensor):
        return feats.detach().requires_grad_() if feats.requires_grad else feats
    if isinstance(feats, dict):
        return {key: _detach_features(value) for key, value in feats.items()}
    if isinstance(feats, (list, tuple)) and not hasattr(feats, '_fields'):
        return type(feats)(_detach_features(value) for value in feats)
    return feats


@contextlib.contextmanager
def _cached_extract_feat(model: torch.nn.Module, feats):
    """Shadow ``model.extract_feat`` on the instance so that it returns ``feats``."""
    model.extract_feat = lambda *args, **kwargs: feats
    try:
        yield
    finally:
        del model.extract_feat


def time_render_heads(model: torch.nn.Module, optim_wrapper, data_batch: dict) -> Dict[str, float]:
    """Time everything ``model.loss`` does after ``extract_feat``, forward + backward.

    See the module docstring (isolated method). Gradients are zeroed after.

    Args:
        model (nn.Module): A pre-training detector whose ``loss`` is
            ``extract_feat`` followed by the render heads.
        optim_wrapper (OptimWrapper): Its optimizer wrapper (to zero grads).
        data_batch (dict): A collated batch from the train dataloader.

    Returns:
        dict: ``wall_s`` and ``cpu_s`` of the render part.
    """
    data = model.data_preprocessor(data_batch, True)
    feats = _detach_features(model.extract_feat(data['inputs'], data['data_samples']))
    with _cached_extract_feat(model, feats):
        wall, cpu = time.perf_counter(), time.process_time()
        losses = model.loss(data['inputs'], data['data_samples'])
        loss, _ = model.parse_losses(losses)
        loss.backward()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    optim_wrapper.zero_grad()
    return dict(wall_s=wall, cpu_s=cpu)


def _to_float(value) -> float:
    """A logged loss (tensor, possibly in a graph, or number) as a Python float."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _batches(dataloader):
    """Cycle over the dataloader forever."""
    while True:
        yield from dataloader


def _summary(values: Sequence[float]) -> dict:
    return dict(mean=round(statistics.fmean(values), 4),
                median=round(statistics.median(values), 4),
                min=round(min(values), 4), max=round(max(values), 4))


def benchmark_iterations(config: str, iters: int = 5, warmup: int = 1,
                         data_root: Optional[str] = None, ann_file: Optional[str] = None,
                         cfg_options: Optional[dict] = None, seed: int = 0,
                         render_heads: bool = True) -> dict:
    """Time ``warmup`` + ``iters`` training iterations of a pre-training config.

    Args:
        config (str): Config file.
        iters (int): Timed iterations (>= 1).
        warmup (int): Untimed iterations first.
        data_root (str, optional): Data root override (see
            :func:`prepare_config`).
        ann_file (str, optional): Train info file override.
        cfg_options (dict, optional): Config overrides.
        seed (int): Seed of torch/numpy/random and the dataloader.
        render_heads (bool): Also time the render heads (isolated method).

    Returns:
        dict: The JSON record (see the module docstring).
    """
    if iters < 1:
        raise ValueError(f'iters must be >= 1, got {iters}')
    cfg = prepare_config(config, data_root, ann_file, cfg_options)
    set_random_seed(seed)
    from mmdet3d.registry import MODELS
    build_wall = time.perf_counter()
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    dataloader = Runner.build_dataloader(cfg.train_dataloader, seed=seed)
    build_wall = time.perf_counter() - build_wall
    batches = _batches(dataloader)
    load_start = os.getloadavg()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records = dict(data=[], iter=[], cpu=[], head=[], head_cpu=[])
    losses: Dict[str, List[float]] = dict()
    for step in range(warmup + iters):
        start = time.perf_counter()
        data_batch = next(batches)
        data_s = time.perf_counter() - start
        wall, cpu = time.perf_counter(), time.process_time()
        log_vars = model.train_step(data_batch, optim_wrapper)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if step < warmup:
            continue
        records['data'].append(data_s)
        records['iter'].append(wall)
        records['cpu'].append(cpu)
        for name, value in log_vars.items():
            losses.setdefault(name, []).append(_to_float(value))
        if render_heads:
            head = time_render_heads(model, optim_wrapper, data_batch)
            records['head'].append(head['wall_s'])
            records['head_cpu'].append(head['cpu_s'])
    rusage = resource.getrusage(resource.RUSAGE_SELF)
    result = dict(
        benchmark='pretrain_iteration', config=osp.basename(config),
        model=cfg.model.type, batch_size=cfg.train_dataloader.batch_size,
        dataset_len=len(dataloader.dataset), threads=torch.get_num_threads(),
        warmup=warmup, iters=iters, build_s=round(build_wall, 2),
        iter_s=_summary(records['iter']), data_s=_summary(records['data']),
        cpu_s=_summary(records['cpu']),
        cpu_per_wall=round(sum(records['cpu']) / sum(records['iter']), 3),
        peak_rss_mb=round(rusage.ru_maxrss / MB, 1),
        peak_rss_before_mb=round(rss_start / MB, 1),
        peak_rss_delta_mb=round((rusage.ru_maxrss - rss_start) / MB, 1),
        losses={name: round(statistics.fmean(values), 5) for name, values in losses.items()})
    figures = [
        dict(name='iteration', value=statistics.median(records['iter']), unit='s'),
        dict(name='process CPU per iteration', value=statistics.median(records['cpu']),
             unit='s'),
        dict(name='data loading', value=statistics.median(records['data']), unit='s'),
        dict(name='peak RSS', value=rusage.ru_maxrss / MB, unit='MB')]
    result.update(
        title='Pre-training iteration of a tiny config (fwd + bwd + optimizer step)',
        workload=(f'{osp.basename(config)} ({cfg.model.type}), batch '
                  f'{cfg.train_dataloader.batch_size}, median of {iters} iterations after '
                  f'{warmup} warm-up, {torch.get_num_threads()} thread(s)'),
        figures=figures, target=None, target_met=None)
    if render_heads:
        share = statistics.median(records['head']) / statistics.median(records['iter'])
        target = RENDER_HEAD_SHARE_TARGETS.get(cfg.model.type)
        result.update(
            render_head_method='isolated: loss() after cached extract_feat, fwd+bwd',
            render_head_s=_summary(records['head']),
            render_head_cpu_s=_summary(records['head_cpu']),
            render_head_share=round(share, 4),
            render_head_share_target=target,
            meets_target=None if target is None else share <= target)
        figures += [
            dict(name='render heads', value=statistics.median(records['head']), unit='s'),
            dict(name='render-head share', value=100 * share, unit='%')]
        if target is not None:
            result.update(target=dict(figure='render-head share', op='<=', limit=100 * target),
                          target_met=result['meets_target'])
    result.update(loadavg_start=[round(v, 2) for v in load_start],
                  loadavg_end=[round(v, 2) for v in os.getloadavg()])
    return result


class LossRecorderHook(Hook):
    """Record every iteration's logged losses; stop training after a time budget.

    The budget is checked after each iteration; when it is spent,
    :class:`TimeBudgetSpent` ends ``runner.train()`` (the train loop only
    checks ``stop_training`` between epochs).

    Args:
        time_limit_s (float): Training wall-time budget, seconds.
    """

    priority = 'LOW'

    def __init__(self, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        self.losses: Dict[str, List[float]] = dict()
        self.start = None

    def before_train(self, runner) -> None:
        self.start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        for name, value in (outputs or {}).items():
            if name.startswith('loss'):
                self.losses.setdefault(name, []).append(_to_float(value))
        if time.perf_counter() - self.start > self.time_limit_s:
            raise TimeBudgetSpent(f'{self.time_limit_s} s spent after iteration {runner.iter + 1}')


class TimeBudgetSpent(Exception):
    """Raised by :class:`LossRecorderHook` to end training on time."""


def loss_curve(config: str, time_limit_s: float = 600.0, epochs: Optional[int] = None,
               window: int = 5, data_root: Optional[str] = None,
               ann_file: Optional[str] = None, cfg_options: Optional[dict] = None,
               work_dir: Optional[str] = None) -> dict:
    """Train a config with ``tools/train.py`` semantics and report the loss drop.

    Args:
        config (str): Config file.
        time_limit_s (float): Training wall-time budget, seconds.
        epochs (int, optional): Overrides ``train_cfg.max_epochs`` (the
            config's ``param_scheduler`` is left as it is).
        window (int): Iterations averaged at the start and at the end.
        data_root (str, optional): Data root override.
        ann_file (str, optional): Train info file override.
        cfg_options (dict, optional): Config overrides.
        work_dir (str, optional): Runner work dir (default: a temp dir).

    Returns:
        dict: The JSON record: per loss term ``first`` / ``last`` logged
        values, ``first_mean`` / ``last_mean`` over ``window`` iterations
        and ``drop`` = 1 - last_mean / first_mean.
    """
    cfg = prepare_config(config, data_root, ann_file, cfg_options)
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = None
    cfg.log_level = 'WARNING'
    recorder = LossRecorderHook(time_limit_s)
    with tempfile.TemporaryDirectory() as tmp:
        apply_common_overrides(cfg, config, work_dir or tmp, 'none')
        runner = Runner.from_cfg(cfg)
        runner.register_hook(recorder)
        load_start = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        stopped_by_time = False
        try:
            runner.train()
        except TimeBudgetSpent:
            stopped_by_time = True
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        iters_done = runner.iter
    if not recorder.losses:
        raise RuntimeError(f'{config}: no training iteration finished within {time_limit_s} s')
    terms = dict()
    for name, values in recorder.losses.items():
        size = max(1, min(window, len(values) // 2))
        first_mean = statistics.fmean(values[:size])
        last_mean = statistics.fmean(values[-size:])
        terms[name] = dict(first=round(values[0], 5), last=round(values[-1], 5),
                           first_mean=round(first_mean, 5), last_mean=round(last_mean, 5),
                           drop=round(1.0 - last_mean / first_mean, 4) if first_mean else None)
    total = terms.get('loss', {})
    iters = len(recorder.losses['loss']) if 'loss' in recorder.losses else iters_done
    loss_dropped = bool(total) and total['last_mean'] < total['first_mean']
    drop = total.get('drop')
    figures = [dict(name='iterations', value=iters, unit=''),
               dict(name='wall', value=wall, unit='s'),
               dict(name='process CPU', value=cpu, unit='s'),
               dict(name='total loss drop', value=None if drop is None else 100 * drop,
                    unit='%')]
    figures += [dict(name=name, value=f'{term["first_mean"]:.3g} -> {term["last_mean"]:.3g}',
                     unit=f'mean of first / last {min(window, iters // 2 or 1)}')
                for name, term in terms.items()]
    return dict(
        benchmark='pretrain_loss_curve', config=osp.basename(config), model=cfg.model.type,
        threads=torch.get_num_threads(), max_epochs=cfg.train_cfg.max_epochs,
        iters=iters, stopped_by_time_limit=stopped_by_time, time_limit_s=time_limit_s,
        wall_s=round(wall, 1), cpu_s=round(cpu, 1), window=window, losses=terms,
        loss_dropped=loss_dropped,
        loadavg_start=[round(v, 2) for v in load_start],
        loadavg_end=[round(v, 2) for v in os.getloadavg()],
        title='Loss drop of a tiny pre-training run (tools/train.py semantics)',
        workload=(f'{osp.basename(config)} ({cfg.model.type}), {cfg.train_cfg.max_epochs} '
                  f'epoch(s) of {len(runner.train_dataloader.dataset)} samples, budget '
                  f'{time_limit_s:g} s{" (spent)" if stopped_by_time else ""}, '
                  f'{torch.get_num_threads()} thread(s)'),
        figures=figures,
        target=dict(figure='total loss drop', op='>', limit=0,
                    text=f'total loss drops within {time_limit_s:g} s'),
        target_met=loss_dropped)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', nargs='+', default=list(DEFAULT_CONFIGS),
                        help='pre-training config(s)')
    parser.add_argument('--data-root', help='existing synthetic data root with info files '
                        '(default: generate a small world in a temp dir)')
    parser.add_argument('--ann-file', help='train info file (default: the config\'s)')
    parser.add_argument('--iters', type=int, default=5, help='timed iterations')
    parser.add_argument('--warmup', type=int, default=1, help='untimed iterations first')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-render-heads', action='store_true',
                        help='skip the render-head timing')
    parser.add_argument('--loss-curve', action='store_true',
                        help='train with the Runner and report the loss drop instead')
    parser.add_argument('--time-limit', type=float, default=600.0,
                        help='--loss-curve wall-time budget per config, seconds')
    parser.add_argument('--epochs', type=int, help='--loss-curve: override max_epochs')
    parser.add_argument('--window', type=int, default=5,
                        help='--loss-curve: iterations averaged at start and end')
    parser.add_argument('--in-process', action='store_true',
                        help='run the configs in this process (peak RSS then includes '
                        'the world generation and the previous configs)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides, e.g. optim_wrapper.optimizer.lr=1e-3')
    return parser.parse_args(argv)


def _run_config(args, config: str, data_root: str) -> dict:
    """One record for one config (in the calling process)."""
    torch.set_num_threads(args.threads)
    if args.loss_curve:
        return loss_curve(config, args.time_limit, args.epochs, args.window, data_root,
                          args.ann_file, args.cfg_options)
    return benchmark_iterations(config, args.iters, args.warmup, data_root, args.ann_file,
                                args.cfg_options, args.seed, not args.no_render_heads)


def main(argv=None) -> List[dict]:
    """Run the benchmark; print and return one record per config.

    Each config runs in a fresh spawned process (unless ``--in-process``) so
    that ``ru_maxrss`` is not inherited from the world generation or from
    the previous config.
    """
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data_root = args.data_root
        if data_root is None:
            start = time.perf_counter()
            data_root = str(generate_synthetic_data(Path(tmp)))
            wall = time.perf_counter() - start
            print(json.dumps(dict(
                benchmark='pretrain_iteration_world', **WORLD_PARAMS, wall_s=round(wall, 1),
                title='Synthetic world of the pre-training benchmarks (generation and infos)',
                workload=(f'{WORLD_PARAMS["num_scenes"]} scenes x '
                          f'{WORLD_PARAMS["keyframes_per_scene"]} key frames at '
                          f'{WORLD_PARAMS["image_size"][0]}x{WORLD_PARAMS["image_size"][1]}, '
                          f'{WORLD_PARAMS["camera_sweeps"]} camera / '
                          f'{WORLD_PARAMS["lidar_sweeps"]} LiDAR sweeps between key frames'),
                figures=[dict(name='wall', value=wall, unit='s')],
                target=None, target_met=None)), flush=True)
        for config in args.config:
            if args.in_process:
                record = _run_config(args, config, data_root)
            else:
                context = multiprocessing.get_context('spawn')
                with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                    record = pool.submit(_run_config, args, config, data_root).result()
            print(json.dumps(record), flush=True)
            results.append(record)
    return results


if __name__ == '__main__':
    main()
