"""Environment shims for torch 2.13 / numpy 1.26 / Python 3.11, applied on import.

Every shim here fixes one named upstream problem, is applied only where a
probe finds that problem in this environment (see "Registry and decisions"
below), and has a test in ``tests/test_compat.py`` that fails without it.
Importing :mod:`render_pretrain.compat` (done by ``projects.NSMAE.nsmae`` /
``projects.MIM4D.mim4d`` and the other glue packages) applies them; the
optional packages (spconv, mmengine) are patched only when installed: every
``patch_*`` function returns True when it patched, False when its package is
not installed.

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

``pkg_resources_warning``
    mmengine 0.10.7 imports ``pkg_resources`` (``mmengine.utils.package_utils``)
    each time it resolves a ``mmdet3d::`` config; setuptools 80 warns on every
    import that the module is deprecated. The API still works with the pinned
    setuptools 80.9.0, so the warning is filtered (message-specific).

``bevfusion_cpu_ops``
    See :func:`install_bevfusion_cpu_ops`.

Registry and decisions: :data:`SHIMS` holds one :class:`Shim` per problem
(name, upstream problem, the condition under which it is needed, a probe and
an apply function). On import, :func:`apply_all` asks each shim's probe
whether the problem exists *here* (a cheap call of the upstream code where
possible: does spconv's stream lookup raise, does mmengine's loader refuse
its own checkpoint, does ``LocalBackend.put`` destroy the old file when a
write fails, ...; the CPU-only shims first ask whether CUDA is available)
and applies the shim only if it does. :data:`STATES` records the outcome of
each shim: ``applied``, ``not needed`` (with the probe's reason) or ``opted
out``; ``make doctor`` (``tools/check_env.py``, ``--json``) lists them.

Opting out: ``RENDER_PRETRAIN_COMPAT_OPT_OUT`` set to a comma-separated list of
shim names (e.g. ``mmengine_atomic_save``) leaves those shims unapplied
(``APPLIED[name]`` is then False, ``STATES[name].status`` ``'opted out'``).
"""
import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

logger = logging.getLogger(__name__)

#: Name of each shim -> whether it was applied in this process.
APPLIED: Dict[str, bool] = {}


def _optional_imports(*names: str) -> Optional[list]:
    """Import what a shim or probe needs from an optional package.

    Args:
        *names (str): Dotted module names (``'spconv.pytorch.core'``) or
            ``'module:attribute'`` (``'mmengine.dataset:BaseDataset'``).

    Returns:
        list or None: The modules / attributes in the order named; None when
        one does not import (``ImportError``, e.g. its package is not
        installed), in which case a shim has nothing to patch and a probe
        finds no problem.
    """
    import importlib
    found = []
    for name in names:
        module_name, _, attribute = name.partition(':')
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
        if attribute and not hasattr(module, attribute):
            return None  # as ``from module import attribute`` would fail
        found.append(getattr(module, attribute) if attribute else module)
    return found


#: The spconv modules holding a copy of ``get_current_stream``.
SPCONV_STREAM_MODULES = tuple(f'spconv.pytorch.{name}'
                              for name in ('cppcore', 'ops', 'hash', 'utils'))


def _cpu_stream() -> int:
    """Stream handle for spconv on a CPU-only torch (the default stream 0)."""
    if torch.cuda.is_available():
        return torch.cuda.current_stream().cuda_stream
    return 0


def patch_spconv_cpu_stream() -> bool:
    """Make spconv's backward pass work without CUDA (see module docstring)."""
    modules = _optional_imports(*SPCONV_STREAM_MODULES)
    if modules is None:
        return False
    cppcore = modules[0]
    _install(_cpu_stream, _upstream(cppcore, 'get_current_stream'),
             *[(module, 'get_current_stream') for module in modules
               if hasattr(module, 'get_current_stream')])
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
    """Let mmengine load its own checkpoints under torch >= 2.6, safely."""
    modules = _optional_imports('mmengine.runner.checkpoint:CheckpointLoader')
    if modules is None:
        return False
    CheckpointLoader = modules[0]
    original = _upstream_local_loader()

    def local_loader(filename, map_location=None):
        return load_from_local(filename, map_location=map_location)

    local_loader.__wrapped_upstream__ = original
    CheckpointLoader.register_scheme(prefixes='', force=True)(local_loader)
    return True


def _upstream_local_loader():
    """mmengine's loader of local checkpoint files, as upstream registered it."""
    from mmengine.runner.checkpoint import CheckpointLoader
    current = CheckpointLoader._schemes['']
    return getattr(current, '__wrapped_upstream__', current)


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


def _wrap(owner: str, name: str, make_wrapper, copies: Sequence[str] = ()) -> bool:
    """Replace ``owner.name`` by ``make_wrapper(upstream original)``.

    Args:
        owner (str): What holds the function, as :func:`_optional_imports`
            names it (``'spconv.pytorch.core'``, ``'mmengine.dataset:BaseDataset'``).
        name (str): The function's attribute name.
        make_wrapper (callable): ``original -> wrapper``.
        copies (Sequence[str]): Modules that imported their own copy of the
            function (``from owner import name``); replaced too.

    Returns:
        bool: True when patched, False when ``owner`` does not import.
    """
    modules = _optional_imports(owner, *copies)
    if modules is None:
        return False
    original = _upstream(modules[0], name)
    _install(make_wrapper(original), original, *[(module, name) for module in modules])
    return True


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
    """Make mmengine's checkpoint saving atomic for local files (see above)."""
    return _wrap('mmengine.runner.checkpoint', 'save_checkpoint', save_checkpoint_atomic,
                 copies=('mmengine.runner.runner', ))


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
    """Name the data file behind a dataset loading error (see module docstring)."""
    def wrap_load(original_load):
        def load_data_list(self):
            try:
                return original_load(self)
            except DataFileError:
                raise
            except Exception as err:
                raise DataFileError(f'annotation file {self.ann_file} cannot be read: '
                                    f'{type(err).__name__}: {err}') from err
        return load_data_list

    def wrap_getitem(original_getitem):
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
        return getitem

    return (_wrap('mmengine.dataset:BaseDataset', 'load_data_list', wrap_load)
            and _wrap('mmengine.dataset:BaseDataset', '__getitem__', wrap_getitem))


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
    def wrap(original):
        def scatter_nd(indices, updates, shape):
            return _scatter_nd(indices, updates, shape)
        return scatter_nd

    return _wrap('spconv.pytorch.core', 'scatter_nd', wrap)


def patch_mmengine_cpu_distributed() -> bool:
    """Let mmengine's ``pytorch`` launcher run on a CPU-only torch (gloo).

    Whether the shim is needed (CUDA unavailable) is decided by :data:`SHIMS`.
    """
    def wrap_init(original_init):
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
        return init_dist_pytorch_cpu

    def wrap_ddp_init(original_ddp_init):
        def ddp_init_cpu(self, module, detect_anomalous_params=False, **kwargs):
            if all(p.device.type == 'cpu' for p in module.parameters()):
                kwargs['device_ids'] = None
                kwargs.pop('output_device', None)
            original_ddp_init(self, module, detect_anomalous_params=detect_anomalous_params,
                              **kwargs)
        return ddp_init_cpu

    return (_wrap('mmengine.dist.utils', '_init_dist_pytorch', wrap_init)
            and _wrap('mmengine.model.wrappers:MMDistributedDataParallel', '__init__',
                      wrap_ddp_init))


def patch_nuscenes_eval_no_predictions() -> bool:
    """Let the devkit score an empty detection result set (see above)."""
    def wrap(original):
        def get_box_class_field(eval_boxes):
            if eval_boxes.boxes and not any(len(boxes) for boxes in eval_boxes.boxes.values()):
                return 'detection_name'
            return original(eval_boxes)
        return get_box_class_field

    return _wrap('nuscenes.eval.common.loaders', '_get_box_class_field', wrap)


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
    was found first: a GPU user's built ops keep precedence. Not applied
    where CUDA is available or built extensions are found on ``sys.path``
    (:func:`_probe_bevfusion_cpu_ops`). Opt out with
    ``RENDER_PRETRAIN_BEVFUSION_CPU_OPS=0`` (or the general opt-out).

    Returns:
        bool: True (the finder is installed).
    """
    import sys
    from render_pretrain.bevfusion_ops import CPUOpsFinder
    if not any(isinstance(f, CPUOpsFinder) for f in sys.meta_path):
        sys.meta_path.append(CPUOpsFinder())
    return True


# --------------------------------------------------------------------------
# Probes: is the upstream problem present in this environment?
#
# Each probe returns ``(needed, reason)``. It runs the *upstream* code (the
# function a shim replaces, found through ``__wrapped_upstream__``) on a tiny
# input where that is cheap (milliseconds, no network); the reason says what
# was observed.
# --------------------------------------------------------------------------


def _cuda_available() -> bool:
    return torch.cuda.is_available()


def _module_source(name: str) -> str:
    """Source text of an installed module, found without importing it ('' if none)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return ''
    if spec is None or not spec.origin or not spec.origin.endswith('.py'):
        return ''
    with open(spec.origin, encoding='utf-8', errors='replace') as f:
        return f.read()


#: The distribution to name when a probe's package does not import.
_DISTRIBUTIONS = {'nuscenes': 'nuscenes-devkit'}


def _probe_with(*names: str):
    """Decorate a probe that needs optional modules: they are its arguments.

    The probe runs with the modules / attributes of :func:`_optional_imports`;
    when one does not import, the problem cannot occur and the decorated
    probe returns ``(False, '<package> is not installed')``.
    """
    import functools

    def decorate(probe):
        @functools.wraps(probe)
        def run():
            modules = _optional_imports(*names)
            if modules is None:
                package = names[0].split('.')[0]
                return False, f'{_DISTRIBUTIONS.get(package, package)} is not installed'
            return probe(*modules)
        return run
    return decorate


def _probe_pkg_resources_warning():
    if 'pkg_resources is deprecated' in _module_source('pkg_resources'):
        return True, "setuptools' pkg_resources warns 'pkg_resources is deprecated' on import"
    return False, "this setuptools' pkg_resources has no deprecation warning (or is absent)"


def _probe_numpy_long():
    import numpy as np
    if 'long' in np.__dict__:
        return False, f'numpy {np.__version__} defines np.long'
    return True, f'numpy {np.__version__} has no np.long (removed in 1.24, back in 2.0)'


@_probe_with('spconv.pytorch.cppcore')
def _probe_spconv_cpu_stream(cppcore):
    if _cuda_available():
        return False, 'CUDA is available: spconv gets a real CUDA stream'
    try:
        _upstream(cppcore, 'get_current_stream')()
    except Exception as err:  # AssertionError 'Torch not compiled with CUDA enabled'
        return True, (f"spconv's get_current_stream raises {type(err).__name__} "
                      'on this CPU-only torch')
    return False, "spconv's get_current_stream works without CUDA"


@contextlib.contextmanager
def _temporary_file(name: str, data: bytes) -> Iterator[str]:
    """Path of a file ``name`` holding ``data`` in a new temporary folder (removed after)."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, 'wb') as f:
            f.write(data)
        yield path


@_probe_with('mmengine.logging:HistoryBuffer', 'mmengine.runner.checkpoint')
def _probe_mmengine_torch_load(HistoryBuffer, _checkpoint_module):
    import pickle

    import numpy as np
    with _temporary_file('probe.pth', b'') as path:
        loss = HistoryBuffer()
        loss.update(1.5)
        torch.save({'meta': {'seed': np.int64(3)},
                    'message_hub': {'log_scalars': {'loss': loss}}}, path)
        try:
            _upstream_local_loader()(path, map_location='cpu')
        except pickle.UnpicklingError:
            return True, (f'torch {torch.__version__} loads weights-only by default and '
                          "mmengine's load_from_local refuses an mmengine checkpoint")
    return False, "mmengine's load_from_local loads its own checkpoints on this torch"


@_probe_with('mmengine.fileio.backends:LocalBackend')
def _probe_mmengine_atomic_save(LocalBackend):
    with _temporary_file('epoch_1.pth', b'old checkpoint') as path:
        try:
            LocalBackend().put(None, path)  # a write that fails half-way
        except TypeError:
            pass
        with open(path, 'rb') as f:
            kept = f.read() == b'old checkpoint'
    if kept:
        return False, "mmengine's LocalBackend.put keeps the old file when a write fails"
    return True, ("mmengine's LocalBackend.put writes in place: a failed write destroys "
                  'the previous checkpoint')


@_probe_with('mmengine.dataset:BaseDataset')
def _probe_mmengine_dataset_errors(BaseDataset):
    from types import SimpleNamespace
    with _temporary_file('damaged_infos.pkl', b'\x80\x04 not a pickle') as path:
        try:
            _upstream(BaseDataset, 'load_data_list')(
                SimpleNamespace(ann_file=path, backend_args=None))
        except Exception as err:
            if path in str(err):
                return False, "mmengine's BaseDataset names a damaged annotation file"
            return True, (f'mmengine reads a damaged annotation file as a bare '
                          f'{type(err).__name__} without its path')
    return True, 'mmengine did not refuse a damaged annotation file'


@_probe_with('spconv.pytorch.core')
def _probe_spconv_scatter_nd(core):
    indices = torch.tensor([[0, 1], [1, 0]])
    updates = torch.tensor([[1.0], [2.0]])
    expected = torch.tensor([[[0.0], [1.0]], [[2.0], [0.0]]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            result = _upstream(core, 'scatter_nd')(indices, updates, [2, 2, 1])
        except Exception as err:
            return True, f"spconv's scatter_nd raises {type(err).__name__} on this torch"
    if any('non-tuple sequence' in str(w.message) for w in caught):
        return True, (f"spconv's scatter_nd indexes with a list, which torch "
                      f'{torch.__version__} deprecates (warns)')
    if not torch.equal(result, expected):
        return True, f"spconv's scatter_nd gives a wrong result on torch {torch.__version__}"
    return False, "spconv's scatter_nd indexes without a warning on this torch"


def _probe_mmengine_cpu_distributed():
    if _cuda_available():
        return False, 'CUDA is available: nccl and device_ids are right'
    if _optional_imports('mmengine.dist.utils') is None:
        return False, 'mmengine is not installed'
    return True, 'CUDA is unavailable (torch.cuda.set_device and nccl fail)'


#: BEVFusion's compiled extensions, as paths under an ``sys.path`` entry.
BEVFUSION_EXTENSIONS = ('projects/BEVFusion/bevfusion/ops/bev_pool/bev_pool_ext',
                        'projects/BEVFusion/bevfusion/ops/voxel/voxel_layer')


def _probe_bevfusion_cpu_ops():
    import importlib.machinery
    import os
    import sys
    if _cuda_available():
        return False, 'CUDA is available: build upstream BEVFusion ops (setup.py develop)'
    for entry in sys.path:
        if all(any(os.path.isfile(os.path.join(entry or '.', ext + suffix))
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES)
               for ext in BEVFUSION_EXTENSIONS):
            return False, f'compiled BEVFusion extensions found under {entry}'
    return True, 'CUDA is unavailable and no compiled BEVFusion extension is on sys.path'


@_probe_with('nuscenes.eval.common.loaders', 'nuscenes.eval.common.data_classes:EvalBoxes')
def _probe_nuscenes_eval(loaders, EvalBoxes):
    empty = EvalBoxes()
    empty.add_boxes('sample', [])
    try:
        _upstream(loaders, '_get_box_class_field')(empty)
    except Exception as err:
        return True, (f'nuscenes-devkit raises {type(err).__name__} ({err}) on a result '
                      'set without boxes')
    return False, 'nuscenes-devkit accepts a result set without boxes'


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------

APPLIED_STATUS, NOT_NEEDED, OPTED_OUT = 'applied', 'not needed', 'opted out'


@dataclass(frozen=True)
class Shim:
    """One shim: the upstream problem, when it is needed, how to tell and fix it.

    Attributes:
        name (str): Name used by the opt-out, ``make doctor`` and the README.
        problem (str): The upstream problem in one line.
        needed_when (str): The condition under which the shim is applied.
        probe (callable): ``() -> (needed: bool, reason: str)``, observes the
            condition in this environment.
        apply (callable): ``() -> bool``, installs the shim (True if done).
    """

    name: str
    problem: str
    needed_when: str
    probe: Callable[[], Tuple[bool, str]]
    apply: Callable[[], bool]


@dataclass(frozen=True)
class ShimState:
    """What happened to a shim in this process: ``status`` and why."""

    status: str
    reason: str


SHIMS: Tuple[Shim, ...] = (
    Shim('pkg_resources_warning',
         "setuptools warns 'pkg_resources is deprecated' on every mmdet3d:: config lookup",
         "the installed pkg_resources contains that warning (its source is read, not run)",
         _probe_pkg_resources_warning, filter_pkg_resources_warning),
    Shim('numpy_long_alias',
         "mmdet3d's ObjectSample uses np.long, removed in numpy 1.24",
         'numpy has no np.long', _probe_numpy_long, alias_numpy_long),
    Shim('spconv_cpu_stream',
         "spconv's backward calls torch.cuda.current_stream(): crashes without CUDA",
         "CUDA is unavailable and spconv's get_current_stream raises",
         _probe_spconv_cpu_stream, patch_spconv_cpu_stream),
    Shim('mmengine_torch_load',
         "torch >= 2.6 loads weights-only and refuses mmengine's own checkpoints",
         "mmengine's local loader refuses a checkpoint like a Runner's (HistoryBuffer, numpy)",
         _probe_mmengine_torch_load, patch_mmengine_torch_load),
    Shim('mmengine_atomic_save',
         'mmengine writes checkpoints in place: an interrupted save leaves a truncated file',
         "a failed LocalBackend.put destroys the existing file",
         _probe_mmengine_atomic_save, patch_mmengine_atomic_save),
    Shim('mmengine_dataset_errors_name_files',
         'a damaged info file, LiDAR file or image fails without its path',
         'reading a damaged annotation file raises an error without its path',
         _probe_mmengine_dataset_errors, patch_mmengine_dataset_errors),
    Shim('spconv_scatter_nd_tuple_index',
         "spconv's scatter_nd (SparseConvTensor.dense) indexes with a list of tensors",
         "spconv's scatter_nd warns, raises or errs on a tiny input",
         _probe_spconv_scatter_nd, patch_spconv_scatter_nd),
    Shim('mmengine_cpu_distributed',
         "mmengine's pytorch launcher calls torch.cuda.set_device, DDP gets device_ids",
         'CUDA is unavailable (mmengine <= 0.10.7 has no CPU path)',
         _probe_mmengine_cpu_distributed, patch_mmengine_cpu_distributed),
    Shim('bevfusion_cpu_ops',
         "mmdetection3d's projects/BEVFusion needs compiled CUDA extensions",
         'CUDA is unavailable and no compiled bev_pool_ext / voxel_layer is on sys.path',
         _probe_bevfusion_cpu_ops, install_bevfusion_cpu_ops),
    Shim('nuscenes_eval_no_predictions',
         "nuscenes-devkit raises 'Invalid box type: None' when nothing is predicted",
         "the devkit's _get_box_class_field raises on a result set without boxes",
         _probe_nuscenes_eval, patch_nuscenes_eval_no_predictions),
)

SHIMS_BY_NAME: Dict[str, Shim] = {shim.name: shim for shim in SHIMS}

#: Name of each shim -> what happened to it in this process.
STATES: Dict[str, ShimState] = {}


def _opted_out() -> set:
    """Shim names listed in ``RENDER_PRETRAIN_COMPAT_OPT_OUT`` (and the BEVFusion switch)."""
    import os
    names = os.environ.get('RENDER_PRETRAIN_COMPAT_OPT_OUT', '')
    skip = {name.strip() for name in names.split(',') if name.strip()}
    if os.environ.get('RENDER_PRETRAIN_BEVFUSION_CPU_OPS', '1') == '0':
        skip.add('bevfusion_cpu_ops')
    return skip


def apply_shim(shim: Shim) -> ShimState:
    """Decide about one shim (opt-out, then its probe) and apply it if needed.

    Args:
        shim (Shim): An entry of :data:`SHIMS`.

    A probe that itself fails (e.g. no writable temporary folder) counts as
    "needed": the shim is applied, as before probes existed, and says so.

    Returns:
        ShimState: ``applied`` (with the probe's reason), ``not needed``
        (the probe's reason; nothing was changed) or ``opted out``.
    """
    if shim.name in _opted_out():
        return ShimState(OPTED_OUT, 'listed in RENDER_PRETRAIN_COMPAT_OPT_OUT')
    try:
        needed, reason = shim.probe()
    except Exception as err:  # e.g. no writable temporary folder: keep the fix
        needed, reason = True, f'the probe failed ({type(err).__name__}: {err}), so applied'
    if not needed:
        return ShimState(NOT_NEEDED, reason)
    if not shim.apply():
        return ShimState(NOT_NEEDED, f'{reason}, but the shim found nothing to patch')
    return ShimState(APPLIED_STATUS, reason)


def apply_all() -> Dict[str, bool]:
    """Apply every needed shim once (except those opted out); return which were applied."""
    if not STATES:
        unknown = sorted(_opted_out() - set(SHIMS_BY_NAME))
        if unknown:
            warnings.warn(f'RENDER_PRETRAIN_COMPAT_OPT_OUT names unknown shims {unknown}; '
                          f'the shims are {sorted(SHIMS_BY_NAME)}', stacklevel=2)
        for shim in SHIMS:
            STATES[shim.name] = apply_shim(shim)
            APPLIED[shim.name] = STATES[shim.name].status == APPLIED_STATUS
        logger.debug('render_pretrain compat shims: %s', STATES)
    return APPLIED


def shim_report() -> List[dict]:
    """Every shim of :data:`SHIMS` with its state, for ``make doctor`` (JSON-ready).

    Returns:
        list[dict]: ``name``, ``state`` (applied / not needed / opted out),
        ``reason``, ``problem``, ``needed_when`` per shim, in registry order.
    """
    apply_all()
    return [dict(name=shim.name, state=STATES[shim.name].status,
                 reason=STATES[shim.name].reason, problem=shim.problem,
                 needed_when=shim.needed_when) for shim in SHIMS]


apply_all()
