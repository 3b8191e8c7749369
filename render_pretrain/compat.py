"""Environment shims for torch 2.13 / numpy 1.26 / Python 3.11, applied on import.

Every shim here fixes one named upstream problem, is guarded so that it only
acts where the problem exists, and has a test in ``tests/test_compat.py``
that fails without it. Importing :mod:`render_pretrain` (and therefore
``projects.NSMAE.nsmae`` / ``projects.MIM4D.mim4d``) applies them; the
optional packages (spconv, mmengine) are patched only when installed.

Shims:

``spconv_cpu_stream``
    spconv 2.3.x calls ``torch.cuda.current_stream()`` in the backward pass
    of its sparse convolutions (``spconv.pytorch.cppcore.get_current_stream``
    and the copies imported into ``ops``, ``hash`` and ``utils``), which
    raises ``AssertionError: Torch not compiled with CUDA enabled`` on a
    CPU-only torch. Stream 0 (the default stream) is what spconv's CPU kernels
    expect, so the shim returns 0 when CUDA is unavailable.

``mmengine_torch_load``
    torch >= 2.6 defaults ``torch.load(weights_only=True)``; mmengine 0.10.x
    checkpoints carry non-tensor metadata (``HistoryBuffer``, numpy arrays
    and scalars in ``message_hub`` / ``meta``), so ``load_checkpoint`` /
    ``--resume`` raise ``UnpicklingError``. The shim re-registers mmengine's
    local-file loader to :func:`render_pretrain.checkpoint_files.
    load_checkpoint_file`: still the weights-only unpickler, with exactly the
    classes mmengine checkpoints hold allowed (never ``weights_only=False``,
    under which a crafted ``.pth`` runs code while loading). A file that needs
    anything else is refused (``UntrustedCheckpointError``), a truncated or
    foreign file gets ``CorruptCheckpointError``; both name the file. Remote
    URLs keep torch's default.

``mmengine_atomic_save``
    mmengine 0.10.7's ``save_checkpoint`` pickles to memory and then writes
    the destination in place (``LocalBackend.put``: ``open(path, 'wb')``), so
    a run killed (or out of disk) while writing leaves a truncated
    ``epoch_N.pth`` that ``--resume`` chokes on, and a failed save of an
    existing name destroys the previous file. The shim writes local
    checkpoints to a temporary file in the same folder, flushes it to disk
    and renames it over the destination (``os.replace``, atomic on POSIX):
    the destination holds either the old or the complete new checkpoint.
    Other backends (``pavi://``, ``s3://``, ...) are untouched.

``mmengine_dataset_errors_name_files``
    mmengine 0.10.7 / mmdet3d 1.4.0 report a damaged data file deep in a
    library and without its name: a truncated LiDAR ``.bin`` as numpy's
    "cannot reshape array of size ... into shape (5)" (``LoadPointsFromFile``),
    an image that does not decode as ``'NoneType' object has no attribute
    'shape'`` or a ``np.stack`` error (``LoadMultiViewImageFromFiles``), a
    damaged info ``.pkl`` as a bare ``UnpicklingError``. The shim wraps
    ``BaseDataset.load_data_list`` and ``BaseDataset.__getitem__`` (used by
    every mmdet3d dataset and pipeline, stock or ours, without config
    changes): an exception there is re-raised as :class:`DataFileError`
    naming the annotation file, or the sample and the files of it that are
    missing, truncated or do not decode (checked only on this error path),
    chained to the original error.

``nuscenes_eval_no_predictions``
    nuscenes-devkit 1.2.0's detection evaluation cannot score a model that
    predicts no box at all: ``filter_eval_boxes`` asks
    ``_get_box_class_field`` for the class field of the first box, finds
    none and raises ``Exception: Error: Invalid box type: None`` (mmdet3d's
    ``NuScenesMetric`` then ends the run). The devkit's ``accumulate`` already
    scores an empty class as no predictions (AP 0), so the shim answers
    ``'detection_name'`` when every sample's box list is empty (a detection
    result set) and defers to the devkit otherwise.

``spconv_scatter_nd_tuple_index``
    spconv 2.3.8's ``scatter_nd`` (used by ``SparseConvTensor.dense()``, hence
    by every mmdet3d sparse encoder) indexes with a *list* of index tensors,
    which torch >= 2.0 deprecates and, per torch's own warning, will read as a
    single tensor index. The shim indexes with a tuple (identical result).

``mmengine_cpu_distributed``
    mmengine 0.10.7's ``_init_dist_pytorch`` always calls
    ``torch.cuda.set_device`` (an ``AttributeError`` on a CPU-only torch) and
    keeps the configs' ``nccl`` backend; ``Runner.wrap_model`` passes
    ``device_ids=[LOCAL_RANK]`` to DDP, which DDP rejects for a CPU module.
    When CUDA is unavailable the shim initialises the process group with
    ``gloo`` and wraps with ``device_ids=None``, so ``tools/dist_train.sh``
    runs on CPU machines (CI); GPU runs are untouched.

``numpy_long_alias``
    mmdet3d 1.4.0's ``DataBaseSampler.sample_all`` (``ObjectSample``, in the
    stock CenterPoint and BEVFusion training pipelines) builds labels with
    ``dtype=np.long``, an alias numpy removed in 1.24 (``AttributeError`` on
    the numpy 1.26 that nuscenes-devkit pins). numpy 2 re-defines ``np.long``
    as the C long scalar type, ``np.int_`` on Linux; the shim defines exactly
    that when the attribute is missing.

Opting out: ``RENDER_PRETRAIN_COMPAT_OPT_OUT`` set to a comma-separated list of
shim names (e.g. ``mmengine_atomic_save``) leaves those shims unapplied
(``APPLIED[name]`` is then False).

``pkg_resources_warning``
    mmengine 0.10.7 imports ``pkg_resources`` (``mmengine.utils.package_utils``)
    each time it resolves a ``mmdet3d::`` config; setuptools 80 warns on every
    import that the module is deprecated. The API still works with the pinned
    setuptools 80.9.0, so the warning is filtered (message-specific).
"""
import logging
import warnings
from typing import Dict

import torch

logger = logging.getLogger(__name__)

#: Name of each shim -> whether it was applied in this process.
APPLIED: Dict[str, bool] = {}


def _torch_version() -> tuple:
    return tuple(int(p) for p in torch.__version__.split('+')[0].split('.')[:2])


def _cpu_stream() -> int:
    """Stream handle for spconv on a CPU-only torch (the default stream 0)."""
    if torch.cuda.is_available():
        return torch.cuda.current_stream().cuda_stream
    return 0


def patch_spconv_cpu_stream() -> bool:
    """Make spconv's backward pass work without CUDA (see module docstring).

    Returns:
        bool: True if spconv is installed and was patched.
    """
    try:
        from spconv.pytorch import cppcore
    except ImportError:
        return False
    import importlib
    for name in ('cppcore', 'ops', 'hash', 'utils'):
        module = importlib.import_module(f'spconv.pytorch.{name}')
        if hasattr(module, 'get_current_stream'):
            module.get_current_stream = _cpu_stream
    return cppcore.get_current_stream is _cpu_stream


def load_from_local(filename: str, map_location=None):
    """mmengine local checkpoint loader: weights-only, mmengine classes allowed.

    Args:
        filename (str): Path of a checkpoint file.
        map_location (str | None): As in :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: No such file.
        UntrustedCheckpointError: The pickle needs a class outside the
            allow-list (nothing from it ran).
        CorruptCheckpointError: Truncated or not a checkpoint.
    """
    from .checkpoint_files import load_checkpoint_file
    return load_checkpoint_file(filename, map_location=map_location)


def patch_mmengine_torch_load() -> bool:
    """Let mmengine load its own checkpoints under torch >= 2.6, safely.

    Returns:
        bool: True if mmengine is installed and torch >= 2.6 (patched).
    """
    if _torch_version() < (2, 6):
        return False
    try:
        from mmengine.runner.checkpoint import CheckpointLoader
    except ImportError:
        return False
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    return True


def _upstream(owner, name: str):
    """``owner.name`` as upstream wrote it: a shim's wrapper records the original.

    The patches below mark each wrapper with ``__wrapped_upstream__`` so that
    applying a shim twice wraps the upstream function, never a wrapper.
    """
    current = getattr(owner, name)
    return getattr(current, '__wrapped_upstream__', current)


def _install(wrapper, original, *places) -> None:
    """Put ``wrapper`` at every ``(owner, name)`` place, marked with its upstream ``original``."""
    wrapper.__wrapped_upstream__ = original
    for owner, name in places:
        setattr(owner, name, wrapper)


def save_checkpoint_atomic(original):
    """Wrap mmengine's ``save_checkpoint`` to write local files atomically.

    Args:
        original (callable): mmengine's ``save_checkpoint``.

    Returns:
        callable: Same signature; local paths go through a temporary file
        in the destination folder, fsync and ``os.replace``.
    """
    import functools

    @functools.wraps(original)
    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if file_client_args is not None or backend_args is not None or '://' in str(filename):
            return original(checkpoint, filename, file_client_args=file_client_args,
                            backend_args=backend_args)
        from .checkpoint_files import save_checkpoint_file_atomic
        save_checkpoint_file_atomic(checkpoint, filename)

    save_checkpoint.__wrapped_upstream__ = original
    return save_checkpoint


def patch_mmengine_atomic_save() -> bool:
    """Make mmengine's checkpoint saving atomic for local files (see above).

    Returns:
        bool: True if mmengine is installed (patched).
    """
    try:
        from mmengine.runner import checkpoint as mm_checkpoint
        from mmengine.runner import runner as mm_runner
    except ImportError:
        return False
    original = _upstream(mm_checkpoint, 'save_checkpoint')
    _install(save_checkpoint_atomic(original), original, (mm_checkpoint, 'save_checkpoint'),
             (mm_runner, 'save_checkpoint'))
    return True


class DataFileError(RuntimeError):
    """A dataset sample or annotation file could not be read (names the file)."""


def _sample_files(info, found=None) -> list:
    """``(kind, path, num_features)`` of every file an info entry names."""
    found = [] if found is None else found
    if isinstance(info, dict):
        for key, value in info.items():
            if key in ('lidar_path', 'img_path') and isinstance(value, str):
                found.append((key, value, info.get('num_pts_feats')))
            else:
                _sample_files(value, found)
    elif isinstance(info, (list, tuple)):
        for value in info:
            _sample_files(value, found)
    return found


def _file_problem(kind: str, path: str, num_features) -> str:
    """Why a sample file is unreadable, or '' if it looks fine."""
    import os

    import numpy as np
    if not os.path.isfile(path):
        return 'not found'
    size = os.path.getsize(path)
    if kind == 'lidar_path' and path.endswith('.bin'):
        point_bytes = 4 * int(num_features or 5)
        if size % point_bytes:
            return (f'truncated or corrupt: {size} bytes is not a multiple of {point_bytes} '
                    f'({point_bytes // 4} float32 per point)')
    if kind == 'img_path':
        import cv2
        with open(path, 'rb') as f:
            data = np.frombuffer(f.read(), np.uint8)
        if cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is None:
            return f'does not decode as an image ({size} bytes)'
    return ''


def patch_mmengine_dataset_errors() -> bool:
    """Name the data file behind a dataset loading error (see module docstring).

    Returns:
        bool: True if mmengine is installed (patched).
    """
    try:
        from mmengine.dataset import BaseDataset
    except ImportError:
        return False
    original_load = _upstream(BaseDataset, 'load_data_list')
    original_getitem = _upstream(BaseDataset, '__getitem__')

    def load_data_list(self):
        try:
            return original_load(self)
        except DataFileError:
            raise
        except Exception as err:
            raise DataFileError(f'annotation file {self.ann_file} cannot be read: '
                                f'{type(err).__name__}: {err}') from err

    def getitem(self, idx):
        try:
            return original_getitem(self, idx)
        except DataFileError:
            raise
        except Exception as err:
            try:
                info = self.get_data_info(idx)
            except Exception:
                info = {}
            files = _sample_files(info)
            problems = [f'{path} {problem}' for kind, path, feats in files
                        for problem in [_file_problem(kind, path, feats)] if problem]
            where = ('; '.join(problems) if problems else
                     f'its files ({len(files)}) look intact, e.g. '
                     f'{[path for _, path, _ in files[:2]]}')
            raise DataFileError(
                f'{type(self).__name__} ({self.ann_file}) sample {idx} '
                f'(token {info.get("token", "?")}) failed in loading or the pipeline: '
                f'{type(err).__name__}: {err}; {where}') from err

    _install(load_data_list, original_load, (BaseDataset, 'load_data_list'))
    _install(getitem, original_getitem, (BaseDataset, '__getitem__'))
    return True


def _scatter_nd(indices: torch.Tensor, updates: torch.Tensor, shape) -> torch.Tensor:
    """spconv's ``scatter_nd`` with tuple indexing (see module docstring).

    Args:
        indices (Tensor): (N, ndim) integer indices into the leading dims.
        updates (Tensor): (N, *shape[ndim:]) values to write.
        shape (list[int]): Output shape.

    Returns:
        Tensor: ``shape`` zeros with ``updates`` written at ``indices``.
    """
    ret = torch.zeros(*shape, dtype=updates.dtype, device=updates.device)
    ndim = indices.shape[-1]
    output_shape = list(indices.shape[:-1]) + list(shape[ndim:])
    flat = indices.view(-1, ndim)
    ret[tuple(flat[:, i] for i in range(ndim)) + (Ellipsis,)] = updates.view(*output_shape)
    return ret


def patch_spconv_scatter_nd() -> bool:
    """Replace spconv's list-indexed ``scatter_nd`` (see module docstring)."""
    try:
        from spconv.pytorch import core
    except ImportError:
        return False
    core.scatter_nd = _scatter_nd
    return True


def patch_mmengine_cpu_distributed() -> bool:
    """Let mmengine's ``pytorch`` launcher run on a CPU-only torch (gloo).

    Returns:
        bool: True if patched (mmengine installed and CUDA unavailable).
    """
    if torch.cuda.is_available():
        return False
    try:
        from mmengine.dist import utils as dist_utils
        from mmengine.model import wrappers
    except ImportError:
        return False
    original_init = dist_utils._init_dist_pytorch
    original_ddp_init = wrappers.MMDistributedDataParallel.__init__

    def init_dist_pytorch_cpu(backend, init_backend='torch', **kwargs):
        import os
        import torch.distributed as torch_dist
        if init_backend != 'torch':
            return original_init(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            logger.info('CUDA unavailable: using the gloo backend instead of nccl')
            backend = 'gloo'
        torch_dist.init_process_group(
            backend=backend, rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']), **kwargs)

    def ddp_init_cpu(self, module, detect_anomalous_params=False, **kwargs):
        if all(p.device.type == 'cpu' for p in module.parameters()):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        original_ddp_init(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch_cpu
    wrappers.MMDistributedDataParallel.__init__ = ddp_init_cpu
    return True


def patch_nuscenes_eval_no_predictions() -> bool:
    """Let the devkit score an empty detection result set (see above).

    Returns:
        bool: True if nuscenes-devkit is installed (patched).
    """
    try:
        from nuscenes.eval.common import loaders
    except ImportError:
        return False
    original = _upstream(loaders, '_get_box_class_field')

    def get_box_class_field(eval_boxes):
        if eval_boxes.boxes and not any(len(boxes) for boxes in eval_boxes.boxes.values()):
            return 'detection_name'
        return original(eval_boxes)

    _install(get_box_class_field, original, (loaders, '_get_box_class_field'))
    return True


def alias_numpy_long() -> bool:
    """Define ``numpy.long`` as numpy 2 does, when missing (see above)."""
    import numpy as np
    if 'long' in np.__dict__:
        return False
    np.long = np.int_
    return True


def filter_pkg_resources_warning() -> bool:
    """Silence setuptools' ``pkg_resources is deprecated`` warning (see above)."""
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
    return True


def install_bevfusion_cpu_ops() -> bool:
    """Shim ``bevfusion_cpu_ops``: BEVFusion's compiled ops from PyTorch / mmcv when not built.

    Upstream problem: mmdetection3d's ``projects/BEVFusion`` imports two
    compiled extensions (``ops.bev_pool.bev_pool_ext``, ``ops.voxel.
    voxel_layer``) that its ``setup.py`` builds with CUDA; without them the
    stock BEVFusion model cannot be imported on a CPU machine. The shim
    appends an import finder at the *end* of ``sys.meta_path``
    (:class:`render_pretrain.bevfusion_ops.CPUOpsFinder`), which serves the
    stand-ins under exactly those two names only when no compiled extension
    was found first: a GPU user's built ops keep precedence. Opt out with
    ``RENDER_PRETRAIN_BEVFUSION_CPU_OPS=0``.

    Returns:
        bool: True if the finder is installed (not opted out).
    """
    import os
    import sys
    from render_pretrain.bevfusion_ops import CPUOpsFinder
    if os.environ.get('RENDER_PRETRAIN_BEVFUSION_CPU_OPS', '1') == '0':
        return False
    if not any(isinstance(f, CPUOpsFinder) for f in sys.meta_path):
        sys.meta_path.append(CPUOpsFinder())
    return True


def _opted_out() -> set:
    """Shim names listed in ``RENDER_PRETRAIN_COMPAT_OPT_OUT``."""
    import os
    names = os.environ.get('RENDER_PRETRAIN_COMPAT_OPT_OUT', '')
    return {name.strip() for name in names.split(',') if name.strip()}


SHIMS = (
    ('pkg_resources_warning', filter_pkg_resources_warning),
    ('numpy_long_alias', alias_numpy_long),
    ('spconv_cpu_stream', patch_spconv_cpu_stream),
    ('mmengine_torch_load', patch_mmengine_torch_load),
    ('mmengine_atomic_save', patch_mmengine_atomic_save),
    ('mmengine_dataset_errors_name_files', patch_mmengine_dataset_errors),
    ('spconv_scatter_nd_tuple_index', patch_spconv_scatter_nd),
    ('mmengine_cpu_distributed', patch_mmengine_cpu_distributed),
    ('bevfusion_cpu_ops', install_bevfusion_cpu_ops),
    ('nuscenes_eval_no_predictions', patch_nuscenes_eval_no_predictions),
)


def apply_all() -> Dict[str, bool]:
    """Apply every shim once (except those opted out); return which were applied."""
    if not APPLIED:
        skip = _opted_out()
        for name, apply in SHIMS:
            APPLIED[name] = False if name in skip else apply()
        logger.debug('render_pretrain compat shims: %s', APPLIED)
    return APPLIED


apply_all()
