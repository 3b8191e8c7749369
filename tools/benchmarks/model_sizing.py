"""Size the paper configs for GPU users: parameters, FLOPs, memory, and two overhead ratios.

Each model of :data:`MODELS` is built from its config (backbone ``init_cfg``
set to None: no ImageNet download) and fed ONE synthetic sample at paper
scale (batch 1, CPU, fp32) through its own data preprocessor
(:func:`make_sample`):

* six cameras at the config's input size (256x704), nuScenes-like rig
  (``render_pretrain.synthetic.sensor_rig``: mounts, 1600x900 intrinsics,
  resize 0.44 + bottom crop in ``img_aug_matrix``), random pixel values;
* a LiDAR sweep ray-cast analytically from the rig's 32-beam LiDAR
  (``--azimuth-steps`` columns, 1084 = 34,688 rays as a real nuScenes
  sweep) onto the ground plane and a wavy wall 12..40 m away, repeated for
  the config's ``LoadPointsFromMultiSweeps.sweeps_num`` + 1 sweeps (ego
  moving 0.5 m per sweep, time lag in the 5th value), then cut to the
  config's ``point_cloud_range``;
* 20 car-sized boxes on the ground (labels 0..9) for the detectors' heads;
* MIM4D: the config's ``num_sweeps`` camera frames per camera (ego 0.5 m
  behind per frame, ``sweep2lidar``), the key LiDAR sweep only.

Per model (one record each, ``benchmark: model_sizing``):

* ``params`` (M): all parameters, and how many require grad;
* ``FLOPs`` (G): one training forward (``model.loss``, losses and render
  heads included, no backward) counted by ``torch.utils.flop_counter.
  FlopCounterMode`` (dense ops: conv, matmul, attention) plus spconv's
  sparse convolutions, which run outside PyTorch's dispatcher: 2 x Cin x
  Cout x (active input-output voxel pairs), the pairs counted from the
  layers' voxel indices (:func:`sparse_conv_pairs`; inverse layers, none
  in these models, would count the bound K x N_out, ``spconv_bound_layers``);
* ``mem/sample`` (MB): peak of torch's CPU allocator over one training
  iteration (``train_step``: preprocessing, forward, backward, AdamW step)
  measured with ``torch.profiler`` (``profile_memory=True``: cumulative
  sum of the allocation events, peak minus start), minus the gradient
  buffers (allocated once, not per sample). It is the model's first
  iteration: AdamW's moments are created in its optimizer step, after the
  activation peak of forward / backward. Frees of blocks allocated before
  the profiler started are not reported by it, so the peak can only err
  high;
* ``est. GPU mem`` (GB) at the paper batch per GPU ``b``:
  ``b x mem/sample + 16 B x trainable params + 4 B x frozen params``
  (fp32 weights 4 B + gradients 4 B + AdamW's two moments 8 B). A lower
  bound for a GPU: CUDA kernels' workspaces, the caching allocator's
  fragmentation and the CUDA context (~0.3-0.5 GB) come on top; ``--amp``
  roughly halves the activations.

Two overhead targets, each measured side by side in ONE process on the SAME
sample, warm-up then ``--iters`` timed ``train_step`` calls interleaved
(pre-training model, reference, pre-training, reference, ...; the
memory-profiled ``train_step`` of the sizing is their warm-up) and one
memory-profiled ``train_step`` each:

* NS-MAE paper C+L pre-training iteration <= 1.1 x a stock BEVFusion C+L
  training iteration (upstream mmdetection3d v1.4.0 ``projects/BEVFusion``
  from the shared checkout, ``render_pretrain.paths.upstream_mmdet3d_dir``,
  or ``$MMDET3D_ROOT``; skipped with a reason when absent), time and
  peak memory; also the ratios over the stock encoder alone
  (``extract_feat`` forward + backward of the summed features, timed in
  each interleaved round and memory-profiled once);
* MIM4D paper iteration (3 sweeps) <= 3.3 x one BEVDet-R50 iteration.

Every ratio record carries the per-module breakdown of both models:
forward wall time per top-level child module in the last timed iteration
(forward hooks, :func:`timed_step`) and forward FLOPs per top-level module,
so a missed target shows which module costs what.

``--tiny`` runs the same on the tiny synthetic configs (for tests).

Usage:
    python tools/benchmarks/model_sizing.py [--iters 3] [--threads 2]
    python tools/benchmarks/model_sizing.py --tiny --iters 1
"""
import argparse
import copy
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BYTES_PER_TRAINABLE = 16  # fp32 weight + gradient + AdamW exp_avg + exp_avg_sq
BYTES_PER_FROZEN = 4
MB = 2.0**20
GB = 2.0**30

NSMAE_CL = 'projects/NSMAE/configs/nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py'
STOCK_CL = ('upstream::projects/BEVFusion/configs/'
            'bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py')
MIM4D = 'projects/MIM4D/configs/mim4d_r50-lss_temporal-neus_8xb1-12e_nus-pretrain.py'
BEVDET = 'configs/bevdet/bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py'

#: name -> (config, input kind). ``upstream::`` configs come from the
#: mmdetection3d v1.4.0 checkout.
MODELS: Dict[str, Tuple[str, str]] = {
    'NS-MAE C+L': (NSMAE_CL, 'bevfusion'),
    'NS-MAE C': ('projects/NSMAE/configs/nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py',
                 'bevfusion'),
    'NS-MAE L': ('projects/NSMAE/configs/nsmae_second_8xb2-cyclic-50e_nus-pretrain.py',
                 'bevfusion'),
    'MIM4D': (MIM4D, 'mim4d'),
    'stock BEVFusion C+L': (STOCK_CL, 'bevfusion'),
    'BEVDet-R50': (BEVDET, 'bevdet'),
}
#: (pre-training model, reference, limit on both ratios, what the reference is)
RATIOS = (
    ('NS-MAE C+L', 'stock BEVFusion C+L', 1.1,
     'a stock BEVFusion C+L training iteration (upstream mmdet3d v1.4.0)'),
    ('MIM4D', 'BEVDet-R50', 3.3, 'a BEVDet-R50 training iteration'),
)
TINY_MODELS: Dict[str, Tuple[str, str]] = {
    'NS-MAE C+L': ('projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
                   'bevfusion'),
    'MIM4D': ('projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py',
              'mim4d'),
    'BEVDet-R18': ('configs/bevdet/bevdet-r18_lss_centerhead_1xb2-2e_synthetic-3d.py', 'bevdet'),
}
TINY_RATIOS = (('MIM4D', 'BEVDet-R18', 3.3, 'a tiny BEVDet-R18 training iteration'), )


# ---------------------------------------------------------------------- #
# configs and models
# ---------------------------------------------------------------------- #
def upstream_root() -> Optional[Path]:
    """The mmdetection3d v1.4.0 checkout holding projects/BEVFusion, or None."""
    from render_pretrain.paths import upstream_mmdet3d_dir
    for root in (os.environ.get('MMDET3D_ROOT'), upstream_mmdet3d_dir()):
        if root and (Path(root) / 'projects' / 'BEVFusion' / 'bevfusion').is_dir():
            return Path(root)
    return None


def load_model_config(config: str):
    """Load ``config`` (``upstream::`` prefix: from the checkout) with no pretrained download.

    Raises:
        FileNotFoundError: An ``upstream::`` config without the checkout.
    """
    from tools.utils import load_config, prepare_registries
    if config.startswith('upstream::'):
        root = upstream_root()
        if root is None:
            raise FileNotFoundError(f'{config}: no mmdetection3d v1.4.0 checkout with '
                                    'projects/BEVFusion (set MMDET3D_ROOT or '
                                    'RENDER_PRETRAIN_SHARED)')
        if str(root) not in sys.path:
            sys.path.append(str(root))
        path = str(root / config.split('::', 1)[1])
    else:
        path = str(REPO / config)
    cfg = load_config(path)
    backbone = cfg.model.get('img_backbone')
    if backbone is not None and backbone.get('init_cfg') is not None:
        backbone['init_cfg'] = None  # timing and sizes do not depend on ImageNet weights
    return prepare_registries(cfg)


def build(config: str, seed: int = 0):
    """Config, model (train mode) and its optimizer wrapper."""
    from mmdet3d.registry import MODELS as REGISTRY
    from mmengine.optim import build_optim_wrapper
    from mmengine.logging import MMLogger
    cfg = load_model_config(config)
    torch.manual_seed(seed)
    model = REGISTRY.build(copy.deepcopy(cfg.model))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # init_weights logs every parameter at INFO
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.train()
    return cfg, model, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))


def _pipeline_step(cfg, type_name: str) -> Optional[dict]:
    for step in cfg.get('train_pipeline') or cfg.train_dataloader.dataset.get('pipeline', []):
        if step['type'] == type_name:
            return step
    return None


def paper_batch(cfg) -> int:
    """Samples per GPU of the config's train dataloader (CBGS wrappers looked through)."""
    return int(cfg.train_dataloader.batch_size)


# ---------------------------------------------------------------------- #
# the synthetic sample
# ---------------------------------------------------------------------- #
def _rig(image_hw: Sequence[int]):
    """Per camera: cam2img (4, 4) at 1600x900, lidar2cam (4, 4), img_aug_matrix (4, 4)."""
    from render_pretrain.synthetic import sensor_rig as rig
    lidar2ego = np.eye(4)
    lidar2ego[:3, :3] = rig.lidar_to_ego_rotation()
    lidar2ego[:3, 3] = rig.LIDAR_TRANSLATION
    height, width = image_hw
    scale = width / 1600.0
    aug = np.eye(4)
    aug[0, 0] = aug[1, 1] = scale
    aug[1, 3] = -(round(900 * scale) - height)  # bottom crop, as bot_pct_lim=(0, 0)
    cams = []
    for mount in rig.CAMERA_MOUNTS:
        cam2ego = np.eye(4)
        cam2ego[:3, :3] = rig.camera_to_ego_rotation(mount)
        cam2ego[:3, 3] = mount.translation
        cam2img = np.eye(4)
        cam2img[:3, :3] = rig.camera_intrinsics(mount, (1600, 900))
        cams.append((cam2img, np.linalg.inv(cam2ego) @ lidar2ego, aug.copy()))
    return cams


def lidar_sweep(azimuth_steps: int, shift_forward: float = 0.0, lag: float = 0.0) -> np.ndarray:
    """One LiDAR sweep (N, 5) in the key LiDAR frame (x right, y forward, z up, metres).

    32 beams x ``azimuth_steps`` rays from the rig's LiDAR (1.84 m above the
    ground) hit the ground plane or a wall at 12..40 m (wavy in azimuth);
    rays beyond 70 m are dropped. Values: x, y, z, intensity, time lag (s).
    """
    from render_pretrain.synthetic import sensor_rig as rig
    elev = rig.lidar_beam_elevations()[:, None]
    azim = np.linspace(-np.pi, np.pi, azimuth_steps, endpoint=False)[None]
    dirs = np.stack(np.broadcast_arrays(np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim),
                                        np.sin(elev)), -1).reshape(-1, 3)
    wall = (26.0 + 14.0 * np.sin(3.0 * np.arctan2(dirs[:, 1], dirs[:, 0]))).clip(12, 40)
    t_wall = wall / np.linalg.norm(dirs[:, :2], axis=1)
    t_ground = np.where(dirs[:, 2] < 0, -rig.LIDAR_TRANSLATION[2] / np.minimum(dirs[:, 2], -1e-9),
                        np.inf)
    t = np.minimum(t_wall, t_ground)
    keep = t < rig.LIDAR_MAX_RANGE
    xyz = dirs[keep] * t[keep, None]
    xyz[:, 1] -= shift_forward  # the ego was behind at an older sweep
    rng = np.random.default_rng(len(xyz))
    extra = np.stack([rng.uniform(0, 255, len(xyz)), np.full(len(xyz), lag)], 1)
    return np.concatenate([xyz, extra], 1).astype(np.float32)


def make_points(cfg, azimuth_steps: int) -> torch.Tensor:
    """The config's sweeps (``sweeps_num`` + 1) cut to its point cloud range, (N, 5)."""
    sweeps = _pipeline_step(cfg, 'LoadPointsFromMultiSweeps')
    num = 1 + (int(sweeps['sweeps_num']) if sweeps else 0)
    points = np.concatenate([lidar_sweep(azimuth_steps, 0.5 * s, 0.05 * s) for s in range(num)])
    pcr = cfg.get('point_cloud_range')
    if pcr is not None:
        inside = np.all((points[:, :3] >= pcr[:3]) & (points[:, :3] < pcr[3:]), axis=1)
        points = points[inside]
    return torch.from_numpy(points)


def _boxes(num: int = 20, seed: int = 0):
    from mmdet3d.structures import LiDARInstance3DBoxes
    rng = np.random.default_rng(seed)
    ang = rng.uniform(-np.pi, np.pi, num)
    dist = rng.uniform(6, 35, num)
    boxes = np.stack([dist * np.cos(ang), dist * np.sin(ang), np.full(num, -1.84),
                      np.full(num, 4.5), np.full(num, 1.9), np.full(num, 1.6),
                      rng.uniform(-np.pi, np.pi, num), np.zeros(num), np.zeros(num)], 1)
    return (LiDARInstance3DBoxes(torch.tensor(boxes, dtype=torch.float32), box_dim=9),
            torch.from_numpy(rng.integers(0, 10, num)))


def _image_hw(cfg) -> Tuple[int, int]:
    for key in ('image_size', 'input_size'):
        if cfg.get(key) is not None:
            return int(cfg[key][0]), int(cfg[key][1])
    for name in ('BEVFusionCompatImageAug3D', 'ImageAug3D', 'MIM4DSweepImageAug'):
        step = _pipeline_step(cfg, name)
        if step is not None:
            return int(step['final_dim'][0]), int(step['final_dim'][1])
    raise KeyError('no image_size / input_size / ImageAug3D final_dim in the config')


def make_sample(cfg, kind: str, azimuth_steps: int = 1084, seed: int = 0) -> dict:
    """One collated training batch (batch 1) in the form the config's pipeline packs.

    Args:
        cfg (Config): The model's config (image size, sweeps, ranges).
        kind (str): ``bevfusion`` (NS-MAE / BEVFusion: points, 6 images,
            lidar2img etc.), ``mim4d`` (S x 6 images and the sweep metas) or
            ``bevdet`` (6 images).
        azimuth_steps (int): LiDAR columns per sweep.

    Returns:
        dict: ``inputs`` and ``data_samples`` as ``pseudo_collate`` gives them.
    """
    from mmdet3d.structures import Det3DDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    height, width = _image_hw(cfg)
    cams = _rig((height, width))
    num_cams = len(cams)
    meta = dict(img_shape=(height, width), ori_shape=(900, 1600), pad_shape=(height, width),
                num_pts_feats=5, sample_idx=0, lidar_path='synthetic.bin', num_views=num_cams)
    from mmdet3d.structures import LiDARInstance3DBoxes
    meta['box_type_3d'] = LiDARInstance3DBoxes
    inputs = {}
    if kind == 'mim4d':
        num_sweeps = int(cfg.num_sweeps)
        sweep2lidar = np.stack([np.eye(4)] * num_sweeps)
        sweep2lidar[:, 1, 3] = -0.5 * np.arange(num_sweeps)  # ego 0.5 m behind per frame
        meta.update(
            cam2img=[c[0] for _ in range(num_sweeps) for c in cams],
            lidar2cam=[c[1] @ np.linalg.inv(sweep2lidar[s]) for s in range(num_sweeps)
                       for c in cams],
            img_aug_matrix=[c[2] for _ in range(num_sweeps) for c in cams],
            sweep2lidar=sweep2lidar.astype(np.float32),
            sweep_time_offsets=(-0.5 * np.arange(num_sweeps)).astype(np.float32),
            sweep_repeated=np.zeros((num_sweeps, num_cams), bool),
            sweep_source=np.repeat(np.arange(num_sweeps)[:, None], num_cams, 1),
            num_sweeps=num_sweeps, num_cams=num_cams, num_views=num_sweeps * num_cams)
        views = num_sweeps * num_cams
    else:
        meta.update(cam2img=[c[0] for c in cams], lidar2cam=[c[1] for c in cams],
                    img_aug_matrix=[c[2] for c in cams])
        if kind == 'bevfusion':
            meta.update(lidar2img=[c[0] @ c[1] for c in cams],
                        cam2lidar=[np.linalg.inv(c[1]) for c in cams], lidar_aug_matrix=np.eye(4))
        views = num_cams
    inputs['img'] = [torch.rand((views, 3, height, width), generator=gen) * 255]
    if kind != 'bevdet':
        inputs['points'] = [make_points(cfg, azimuth_steps)]
    sample = Det3DDataSample(metainfo=meta)
    if kind != 'mim4d':
        boxes, labels = _boxes(seed=seed)
        sample.gt_instances_3d = InstanceData(bboxes_3d=boxes, labels_3d=labels)
    return dict(inputs=inputs, data_samples=[sample])


# ---------------------------------------------------------------------- #
# measurements
# ---------------------------------------------------------------------- #
def count_params(model: torch.nn.Module) -> Tuple[int, int]:
    """(all parameters, parameters that require grad)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _flat_keys(coords: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Flat int64 ids of (batch, i, j, k) voxel coordinates in a grid of ``shape``."""
    key = coords[:, 0].long()
    for axis, size in enumerate(shape):
        key = key * int(size) + coords[:, axis + 1].long()
    return key


def sparse_conv_pairs(module, x, out) -> Optional[int]:
    """Active (input voxel, output voxel) pairs of one spconv layer, from the voxel indices.

    For every kernel offset ``k``, the output voxels ``o`` whose input
    ``o * stride - padding + k * dilation`` (submanifold: ``o + (k - K // 2)
    * dilation``) is an active input voxel, counted with ``torch.isin`` on
    flat voxel ids. Exact and independent of spconv's algorithm (its pair
    tables are laid out differently per algorithm and device).

    Returns:
        int or None: The pair count; None for a transposed or inverse layer.
    """
    if getattr(module, 'transposed', False) or getattr(module, 'inverse', False):
        return None
    ndim = len(module.kernel_size)
    in_keys = _flat_keys(x.indices, x.spatial_shape)
    out_idx = out.indices.long()
    kernel = torch.tensor(module.kernel_size)
    dilation = torch.tensor(module.dilation)
    offsets = torch.stack(torch.meshgrid(*[torch.arange(k) for k in module.kernel_size],
                                         indexing='ij'), -1).reshape(-1, ndim)
    if module.subm:
        base = out_idx[:, 1:]
        shift = (offsets - kernel // 2) * dilation
    else:
        base = out_idx[:, 1:] * torch.tensor(module.stride)
        shift = offsets * dilation - torch.tensor(module.padding)
    shape = torch.tensor(x.spatial_shape)
    pairs = 0
    for delta in shift.to(out_idx.device):
        src = base + delta
        inside = ((src >= 0) & (src < shape.to(src.device))).all(1)
        coords = torch.cat([out_idx[inside, :1], src[inside]], 1)
        pairs += int(torch.isin(_flat_keys(coords, x.spatial_shape), in_keys).sum())
    return pairs


class SparseConvFlops:
    """Forward hooks counting FLOPs of spconv layers: 2 x Cin x Cout x active pairs."""

    def __init__(self, model: torch.nn.Module):
        self.flops: Dict[str, int] = {}
        self.bound_layers = 0
        self.handles = []
        try:
            from spconv.pytorch.conv import SparseConvolution
        except ImportError:  # no spconv: nothing sparse to count
            return
        for name, module in model.named_modules():
            if isinstance(module, SparseConvolution):
                self.handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args, out):
            pairs = sparse_conv_pairs(module, args[0], out)
            if pairs is None:  # inverse / transposed: bound K x N_out
                self.bound_layers += 1
                pairs = int(np.prod(module.kernel_size)) * int(out.features.shape[0])
            self.flops[name] = self.flops.get(name, 0) + 2 * module.in_channels * \
                module.out_channels * pairs
        return hook

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _preprocess(model, batch):
    return model.data_preprocessor(copy.deepcopy(batch), True)


class _LossForward(torch.nn.Module):
    """Calls ``model.loss`` from ``forward``, so that FlopCounterMode names modules by path."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, data: dict):
        return self.model.loss(data['inputs'], data['data_samples'])


def count_flops(model: torch.nn.Module, batch: dict) -> dict:
    """Forward FLOPs of ``model.loss`` on ``batch`` (no backward).

    Dense ops are counted by ``FlopCounterMode``; each spconv layer by
    :class:`SparseConvFlops` (2 Cin Cout x active pairs). On the CPU spconv's
    native algorithm runs one ``torch.mm`` per kernel offset, which
    ``FlopCounterMode`` sees too: those counts (``spconv_dense_seen``) are
    taken out of the dense total so that nothing is counted twice, and they
    cross-check the pair count (equal on the CPU; zero on GPUs, where
    spconv's kernels run outside PyTorch).

    Returns:
        dict: ``total``, ``dense`` (FlopCounterMode, spconv layers excluded),
        ``sparse`` (spconv hooks), ``spconv_dense_seen``, ``per_module``
        {top-level child: FLOPs, ``(detector)``: the detector's own ops
        outside its children}, ``spconv_bound_layers``.
    """
    from torch.utils.flop_counter import FlopCounterMode
    data = _preprocess(model, batch)
    sparse = SparseConvFlops(model)
    counter = FlopCounterMode(display=False, depth=3)
    try:
        with counter, torch.no_grad():
            _LossForward(model)(data)
    finally:
        sparse.remove()
    prefix = '_LossForward.model.'
    counts = {name[len(prefix):]: int(sum(c.values()))
              for name, c in counter.get_flop_counts().items() if name.startswith(prefix)}
    per_module = {name: flops for name, flops in counts.items() if '.' not in name}
    seen = 0
    for name, flops in sparse.flops.items():
        top = name.split('.')[0]
        per_module[top] = per_module.get(top, 0) + flops - counts.get(name, 0)
        seen += counts.get(name, 0)
    dense = int(counter.get_total_flops()) - seen
    total_sparse = int(sum(sparse.flops.values()))
    # ops the detector runs itself, outside its child modules (e.g. projections)
    per_module['(detector)'] = dense + total_sparse - sum(per_module.values())
    per_module = dict(sorted(per_module.items(), key=lambda kv: -kv[1]))
    return dict(total=dense + total_sparse, dense=dense, sparse=total_sparse,
                spconv_dense_seen=seen, per_module=per_module,
                spconv_bound_layers=sparse.bound_layers)


def allocator_peak_bytes(fn) -> int:
    """Peak growth of torch's CPU allocator while ``fn()`` runs (torch.profiler events).

    The allocation / free events (``[memory]``, signed ``nbytes``) of
    ``profile(profile_memory=True)`` in time order, cumulated; the peak of
    that sum is the most memory held at once beyond what was held before.
    """
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == '[memory]' and str(e.device_type()).endswith('CPU')]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += int(event.nbytes())
        peak = max(peak, live)
    return peak


def grad_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def train_step(model, optim_wrapper, batch) -> None:
    """One mmengine training iteration: preprocess, loss, backward, clip, AdamW step."""
    model.train_step(copy.deepcopy(batch), optim_wrapper)


def memory_per_sample(model, optim_wrapper, batch) -> Tuple[int, int]:
    """(peak allocator growth of one train_step, that minus the gradient buffers), bytes.

    Gradients are set to None first, so that the peak includes allocating them.
    """
    model.zero_grad(set_to_none=True)
    peak = allocator_peak_bytes(lambda: train_step(model, optim_wrapper, batch))
    return peak, max(0, peak - grad_bytes(model))


def encoder_step(model, batch) -> None:
    """Forward + backward of ``extract_feat`` alone (the summed features as loss)."""
    import inspect
    data = _preprocess(model, batch)
    samples = data['data_samples']
    if 'batch_input_metas' in inspect.signature(model.extract_feat).parameters:
        samples = [sample.metainfo for sample in samples]  # upstream BEVFusion reads metas
    feats = model.extract_feat(data['inputs'], samples)
    total = sum(t.float().sum() for t in _tensors(feats) if t.requires_grad)
    total.backward()
    model.zero_grad(set_to_none=True)


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def timed_step(model, optim_wrapper, batch) -> Tuple[float, Dict[str, float]]:
    """Wall seconds of one train_step and the forward seconds of each top-level module.

    Forward pre- / post-hooks on the model's children (the data preprocessor
    aside) take a ``perf_counter`` each (microseconds against seconds per
    iteration). ``(rest)`` is the iteration minus those forwards: backward,
    optimizer step, preprocessing and the detector's own code between its
    modules.

    Returns:
        tuple: (wall seconds, {module: forward seconds, ..., '(rest)': s}),
        modules slowest first.
    """
    times: Dict[str, float] = {}
    starts: Dict[str, List[float]] = {}
    handles = []
    for name, child in model.named_children():
        if name == 'data_preprocessor':
            continue

        def pre(module, args, name=name):
            starts.setdefault(name, []).append(time.perf_counter())

        def post(module, args, out, name=name):
            times[name] = times.get(name, 0.0) + time.perf_counter() - starts[name].pop()
        handles += [child.register_forward_pre_hook(pre), child.register_forward_hook(post)]
    wall = time.perf_counter()
    try:
        train_step(model, optim_wrapper, batch)
    finally:
        for handle in handles:
            handle.remove()
    wall = time.perf_counter() - wall
    times = {k: round(v, 4) for k, v in sorted(times.items(), key=lambda kv: -kv[1])}
    times['(rest)'] = round(wall - sum(times.values()), 4)
    return wall, times


# ---------------------------------------------------------------------- #
# records
# ---------------------------------------------------------------------- #
def size_model(name: str, cfg, model, optim_wrapper, batch: dict, config: str,
               paper_gpus: Optional[int]) -> dict:
    """The ``model_sizing`` record of one model (see the module docstring)."""
    total, trainable = count_params(model)
    flops = count_flops(model, batch)
    peak, per_sample = memory_per_sample(model, optim_wrapper, batch)
    batch_per_gpu = paper_batch(cfg)
    est = (batch_per_gpu * per_sample + BYTES_PER_TRAINABLE * trainable
           + BYTES_PER_FROZEN * (total - trainable))
    inputs = batch['inputs']
    points = int(inputs['points'][0].shape[0]) if 'points' in inputs else 0
    views, _, height, width = inputs['img'][0].shape
    workload = (f'{name}: batch 1, {views} views {height}x{width}'
                + (f', {points} points' if points else '') + ', fp32, CPU')
    return dict(
        benchmark='model_sizing',
        title=('Parameters, forward FLOPs (training forward, FlopCounterMode + spconv pairs), '
               'memory per sample (torch CPU allocator peak of one training iteration minus '
               'gradients, torch.profiler) and estimated GPU memory at the paper batch '
               '(b x mem/sample + 16 B/trainable param + 4 B/frozen param, fp32 AdamW)'),
        workload=workload,
        figures=[
            dict(name='params', value=round(total / 1e6, 2), unit='M'),
            dict(name='FLOPs', value=round(flops['total'] / 1e9, 1), unit='G'),
            dict(name='mem/sample', value=round(per_sample / MB), unit='MB'),
            dict(name='paper batch/GPU', value=batch_per_gpu, unit=''),
            dict(name='est. GPU mem', value=round(est / GB, 2), unit='GB'),
        ],
        target=None, target_met=None,
        model=name, config=config, params=total, trainable_params=trainable,
        flops=flops['total'], flops_dense=flops['dense'], flops_sparse=flops['sparse'],
        flops_per_module=flops['per_module'], spconv_bound_layers=flops['spconv_bound_layers'],
        flops_spconv_seen_by_flop_counter=flops['spconv_dense_seen'],
        peak_alloc_bytes=peak, grad_bytes=grad_bytes(model), mem_per_sample_bytes=per_sample,
        paper_batch_per_gpu=batch_per_gpu, paper_gpus=paper_gpus, est_gpu_mem_bytes=est,
        points=points, views=int(views), image_hw=[int(height), int(width)])


def _gpus(config: str) -> Optional[int]:
    match = re.search(r'_(\d+)xb\d+', Path(config).name)
    return int(match.group(1)) if match else None


def compare(pre: dict, ref: dict, limit: float, ref_text: str, iters: int, warmup: int,
            encoder: bool) -> dict:
    """Time and memory ratio of ``pre`` over ``ref`` on the same sample, interleaved.

    Args:
        pre, ref (dict): ``name``, ``model``, ``optim``, ``batch``, ``sizing``.
        limit (float): Target on both ratios.
        ref_text (str): What the reference iteration is.
        iters, warmup (int): Timed and untimed iterations per model (the
            memory-profiled ``train_step`` of :func:`size_model` already
            warmed both models up, hence ``--warmup 0`` by default).
        encoder (bool): Also time ``ref``'s encoder alone (``extract_feat``).
    """
    for _ in range(warmup):
        for side in (pre, ref):
            train_step(side['model'], side['optim'], side['batch'])
    walls: Dict[str, List[float]] = {'pre': [], 'ref': [], 'enc': []}
    modules: Dict[str, Dict[str, float]] = {}
    for _ in range(iters):
        for key, side in (('pre', pre), ('ref', ref)):
            wall, modules[side['name']] = timed_step(side['model'], side['optim'], side['batch'])
            walls[key].append(wall)
        if encoder:
            start = time.perf_counter()
            encoder_step(ref['model'], ref['batch'])
            walls['enc'].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in walls.items() if v}
    mem_pre = pre['sizing']['peak_alloc_bytes']
    mem_ref = ref['sizing']['peak_alloc_bytes']
    time_ratio = med['pre'] / med['ref']
    mem_ratio = mem_pre / mem_ref
    met = bool(time_ratio <= limit and mem_ratio <= limit)
    figures = [
        dict(name='pre-training iter', value=round(med['pre'], 2), unit='s'),
        dict(name='reference iter', value=round(med['ref'], 2), unit='s'),
        dict(name='time ratio', value=round(time_ratio, 3), unit='x'),
        dict(name='peak mem ratio', value=round(mem_ratio, 3), unit='x'),
        dict(name='worse ratio', value=round(max(time_ratio, mem_ratio), 3), unit='x'),
    ]
    record = dict(
        benchmark='pretrain_overhead',
        title=('Pre-training iteration over its reference detector\'s training iteration on '
               'the same synthetic sample, batch 1, CPU, measured side by side in one process: '
               'median wall time of train_step (interleaved) and peak of torch\'s CPU allocator '
               '(torch.profiler) of one train_step each'),
        workload=(f'{pre["name"]} vs {ref["name"]}: {warmup} warm-up + {iters} timed '
                  f'iterations each, interleaved, {torch.get_num_threads()} thread(s)'),
        figures=figures,
        target=dict(figure='worse ratio', op='<=', limit=limit,
                    text=f'time and memory <= {limit}x {ref_text}'),
        target_met=met,
        model=pre['name'], reference=ref['name'], limit=limit, iters=iters, warmup=warmup,
        iter_s={k: v for k, v in walls.items() if v},
        time_ratio=time_ratio, mem_ratio=mem_ratio,
        peak_alloc_bytes={pre['name']: mem_pre, ref['name']: mem_ref},
        module_forward_s=modules,
        flops_per_module={side['name']: side['sizing']['flops_per_module']
                          for side in (pre, ref)})
    if encoder:
        ref['model'].zero_grad(set_to_none=True)
        enc_peak = allocator_peak_bytes(lambda: encoder_step(ref['model'], ref['batch']))
        record.update(encoder_only_s=round(med['enc'], 4), encoder_peak_alloc_bytes=enc_peak,
                      time_ratio_over_encoder=med['pre'] / med['enc'],
                      mem_ratio_over_encoder=mem_pre / enc_peak)
        figures += [dict(name='time over reference encoder', value=round(
                        med['pre'] / med['enc'], 3), unit='x'),
                    dict(name='mem over reference encoder', value=round(
                        mem_pre / enc_peak, 3), unit='x')]
    return record


def run(models: Dict[str, Tuple[str, str]], ratios, iters: int, warmup: int,
        azimuth_steps: int, only: Optional[Sequence[str]] = None) -> List[dict]:
    """Size every model, then measure the ratios; print and return the JSON records."""
    records, built = [], {}
    needed = set(only) if only else set(models)
    for name, (config, kind) in models.items():
        if name not in needed:
            continue
        if config.startswith('upstream::') and upstream_root() is None:
            print(f'model_sizing: skipping {name}: no mmdetection3d v1.4.0 checkout with '
                  'projects/BEVFusion (set MMDET3D_ROOT or RENDER_PRETRAIN_SHARED)',
                  file=sys.stderr)
            continue
        cfg, model, optim = build(config)
        batch = make_sample(cfg, kind, azimuth_steps)
        sizing = size_model(name, cfg, model, optim, batch, config, _gpus(config))
        print(json.dumps(sizing), flush=True)
        records.append(sizing)
        built[name] = dict(name=name, model=model, optim=optim, batch=batch, sizing=sizing,
                           cfg=cfg, kind=kind)
    for pre_name, ref_name, limit, ref_text in ratios:
        if pre_name not in built or ref_name not in built:
            continue
        pre, ref = built[pre_name], dict(built[ref_name])
        if pre['kind'] == ref['kind'] == 'bevfusion':
            ref['batch'] = pre['batch']  # the same sample for both
        record = compare(pre, ref, limit, ref_text, iters, warmup,
                         encoder=ref['kind'] == 'bevfusion')
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


# ---------------------------------------------------------------------- #
# the README's model table
# ---------------------------------------------------------------------- #
DEFAULT_JSONL = REPO / 'docs' / 'results' / 'benchmarks.jsonl'
TABLE_BEGIN = '<!-- model-table:begin (generated by tools/benchmarks/model_sizing.py --readme) -->'
TABLE_END = '<!-- model-table:end -->'
NOT_RELEASED = 'not released (no nuScenes run yet)'
UPSTREAM_DOWNLOAD = 'upstream: mmdet3d v1.4.0 model zoo'


def _fmt(value: float, digits: int = 1) -> str:
    return f'{value:.{digits}f}'


def model_table(jsonl: Path) -> str:
    """The README's Models table (mmdet3d's model-zoo layout) from benchmark JSON lines.

    Args:
        jsonl (Path): A file written by ``report.py run`` holding
            ``model_sizing`` (and ``pretrain_overhead``) records.

    Returns:
        str: The Markdown block between :data:`TABLE_BEGIN` and
        :data:`TABLE_END` (markers included), ending in a newline.

    Raises:
        ValueError: The file holds no ``model_sizing`` record.
    """
    import importlib.util
    spec = importlib.util.spec_from_file_location('benchmark_report',
                                                  Path(__file__).resolve().parent / 'report.py')
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    run_info, records = report.read_jsonl(Path(jsonl))
    sizing = [r for r in records if r['benchmark'] == 'model_sizing']
    overhead = [r for r in records if r['benchmark'] == 'pretrain_overhead']
    if not sizing:
        raise ValueError(f'{jsonl}: no model_sizing record (run tools/benchmarks/model_sizing.py '
                         'through report.py run)')
    try:
        source = str(Path(jsonl).resolve().relative_to(REPO))
    except ValueError:
        source = Path(jsonl).name
    lines = [TABLE_BEGIN, '',
             f'Generated from `{source}` (commit `{run_info["commit"][:10]}`, '
             f'{run_info["started"]}); do not edit by hand.', '',
             '| Config | Params (M) | FLOPs (G) | Mem/sample (MB) | '
             'est. GPU mem @ paper batch (GB) | Download |',
             '| --- | --- | --- | --- | --- | --- |']
    for rec in sizing:
        config = rec['config']
        if config.startswith('upstream::'):
            link = f'{rec["model"]} (`{config.split("::", 1)[1].rsplit("/", 1)[-1]}`, upstream)'
            download = UPSTREAM_DOWNLOAD
        else:
            link = f'[{rec["model"]}]({config})'
            download = NOT_RELEASED
        gpus = f'{rec["paper_gpus"]} x ' if rec.get('paper_gpus') else ''
        lines.append(
            f'| {link} | {_fmt(rec["params"] / 1e6, 2)} | {_fmt(rec["flops"] / 1e9)} | '
            f'{rec["mem_per_sample_bytes"] / MB:.0f} | '
            f'{_fmt(rec["est_gpu_mem_bytes"] / GB, 2)} ({gpus}{rec["paper_batch_per_gpu"]}'
            f'/GPU) | {download} |')
    if overhead:
        lines += ['', '| pre-training | reference | time ratio | peak memory ratio | target | '
                  '| over the reference encoder alone (time, memory) |',
                  '| --- | --- | --- | --- | --- | --- | --- |']
        for rec in overhead:
            encoder = '-'
            if 'time_ratio_over_encoder' in rec:
                encoder = (f'{rec["time_ratio_over_encoder"]:.2f}x, '
                           f'{rec["mem_ratio_over_encoder"]:.2f}x')
            lines.append(f'| {rec["model"]} | {rec["reference"]} | {rec["time_ratio"]:.2f}x | '
                         f'{rec["mem_ratio"]:.2f}x | <= {rec["limit"]}x | '
                         f'{"met" if rec["target_met"] else "**missed**"} | {encoder} |')
        lines += ['', 'Where the time goes (the last timed iteration of each: forward '
                  'seconds of the largest top-level modules, `(rest)` = backward, '
                  'optimizer step and glue; '
                  'forward GFLOPs per module in brackets):', '']
        for rec in overhead:
            for name in (rec['model'], rec['reference']):
                lines.append(f'- {name}: ' + module_breakdown(
                    rec.get('module_forward_s', {}).get(name, {}),
                    rec.get('flops_per_module', {}).get(name, {})))
    lines += ['', TABLE_END]
    return '\n'.join(lines) + '\n'


def module_breakdown(times: Dict[str, float], flops: Dict[str, int], top: int = 5) -> str:
    """``module s (G GFLOPs)`` for the ``top`` slowest modules, then ``(rest)``."""
    items = [(k, v) for k, v in times.items() if k != '(rest)'][:top]
    parts = [f'{k} {v:.1f} s' + (f' ({flops[k] / 1e9:.0f} G)' if k in flops else '')
             for k, v in items]
    if '(rest)' in times:
        parts.append(f'(rest) {times["(rest)"]:.1f} s')
    return ', '.join(parts)


def write_readme_table(readme: Path, jsonl: Path) -> None:
    """Replace the block between the model-table markers of ``readme``.

    Raises:
        ValueError: ``readme`` lacks a marker.
    """
    text = Path(readme).read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise ValueError(f'{readme}: no model-table markers ({TABLE_BEGIN!r} ... {TABLE_END!r})')
    head, rest = text.split(TABLE_BEGIN, 1)
    tail = rest.split(TABLE_END, 1)[1]
    Path(readme).write_text(head + model_table(jsonl).rstrip('\n') + tail)


def main(argv=None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=2, help='timed iterations per model')
    parser.add_argument('--warmup', type=int, default=0,
                        help='untimed iterations per model before the timed ones (the '
                        'memory-profiled iteration of the sizing already ran one)')
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--azimuth-steps', type=int, default=1084,
                        help='LiDAR columns per sweep (1084 x 32 beams as nuScenes)')
    parser.add_argument('--tiny', action='store_true', help='the tiny synthetic configs')
    parser.add_argument('--only', nargs='+', metavar='MODEL',
                        help='size only these models (a ratio needs both of its models)')
    parser.add_argument('--readme', type=Path,
                        help='instead of measuring, write the model table from --jsonl '
                        'into this file between the model-table markers')
    parser.add_argument('--jsonl', type=Path, default=DEFAULT_JSONL,
                        help='benchmark JSON lines with model_sizing records (report.py run)')
    args = parser.parse_args(argv)
    if args.readme is not None:
        write_readme_table(args.readme, args.jsonl)
        return []
    if args.iters < 1:
        parser.error('--iters must be >= 1')
    if args.threads:
        torch.set_num_threads(args.threads)
    models, ratios = (TINY_MODELS, TINY_RATIOS) if args.tiny else (MODELS, RATIOS)
    unknown = set(args.only or ()) - set(models)
    if unknown:
        parser.error(f'--only: unknown model(s) {sorted(unknown)}; known: {sorted(models)}')
    return run(models, ratios, args.iters, args.warmup, args.azimuth_steps, args.only)


if __name__ == '__main__':
    main()
