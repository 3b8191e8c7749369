"""Keys every random draw of training by the run's seed, rank, epoch / iteration.

See :mod:`render_pretrain.seeding` for the generators. Registered in
mmdet3d's HOOKS when ``projects.NSMAE.nsmae``, ``projects.MIM4D.mim4d`` or
``projects.BEVDetCompat.bevdet_compat`` is imported.
"""
from typing import Iterator, List, Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from mmdet3d.registry import HOOKS
from render_pretrain.seeding import PHASE_TEST, PHASE_TRAIN, PHASE_VAL


def _walk_transform(transform) -> Iterator:
    """The transform and, depth first, the ones it wraps (Compose, RandomApply, ...)."""
    yield transform
    children = getattr(transform, 'transforms', None)
    if children is None:
        return
    if not isinstance(children, (list, tuple)):
        children = [children]
    for child in children:
        yield from _walk_transform(child)


def _walk_dataset(dataset) -> Iterator:
    """Every transform of the dataset's pipelines, through dataset wrappers.

    Wrappers (``CBGSDataset``, ``RepeatDataset``, ``ClassBalancedDataset``)
    hold ``dataset``, ``ConcatDataset`` holds ``datasets``; a wrapper may
    have its own ``pipeline`` too (``MultiImageMixDataset``).
    """
    for inner in getattr(dataset, 'datasets', None) or []:
        yield from _walk_dataset(inner)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        yield from _walk_dataset(inner)
    pipeline = getattr(dataset, 'pipeline', None)
    if pipeline is not None:
        yield from _walk_transform(pipeline)


def find_seeded_transforms(dataset) -> List:
    """Transforms of ``dataset`` that take an epoch key (``set_epoch_randomness``).

    Args:
        dataset: An mmengine dataset, possibly wrapped.

    Returns:
        list: Each seeded transform once, in pipeline order (the order gives
        their stream index).
    """
    found, seen = [], set()
    for transform in _walk_dataset(dataset):
        if hasattr(transform, 'set_epoch_randomness') and id(transform) not in seen:
            seen.add(id(transform))
            found.append(transform)
    return found


@HOOKS.register_module()
class SeededRandomnessHook(Hook):
    """Derive every random draw from (run seed, rank, epoch or iteration).

    - Before every training epoch, each seeded transform of the training
      dataset (found through dataset wrappers and nested pipelines) gets the
      key ``(runner.seed, rank, epoch, stream)``; its draws then come from a
      generator per DataLoader worker created lazily in the worker
      (:class:`render_pretrain.seeding.EpochSeededTransformMixin`). Workers
      that persist across epochs (``persistent_workers=True``) hold copies of
      the transforms made when they started, so they are re-created for the
      new key (as mmdet's ``PipelineSwitchHook`` does).
    - Before every training / validation / test iteration, a model with
      ``set_random_key`` (``NSMAE``, ``MIM4D``) gets ``(runner.seed, rank,
      phase, iteration)``: the masks and rays of iteration ``i`` on rank
      ``r`` are a function of the seed, ``r`` and ``i`` only.

    With a fixed ``num_workers`` every worker loads a fixed list of samples,
    so the same seed gives the same losses and a run resumed at an epoch
    boundary continues exactly as the uninterrupted run (nothing extra is
    saved in the checkpoint). An iteration-based loop creates its data
    iterator before any hook runs, so there the transforms keep their
    fallback (per-worker seeds from mmengine) and only the model draws are
    keyed.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._warned_iter_loop = False

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _key_model(self, runner, phase: int, iteration: int) -> None:
        model = self._model(runner)
        if hasattr(model, 'set_random_key'):
            model.set_random_key(runner.seed, get_rank(), phase, iteration)

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop) and not self._warned_iter_loop:
            self._warned_iter_loop = True
            runner.logger.warning(
                'SeededRandomnessHook: the training loop is not epoch based; its data '
                'iterator starts before any hook, so augmentation draws use the '
                'transforms\' fallback (workers seeded by mmengine), not the epoch key')

    def before_train_epoch(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            return  # the loop holds its own iterator: its workers must not be restarted
        loader = runner.train_dataloader
        transforms = find_seeded_transforms(loader.dataset)
        rank = get_rank()
        for stream, transform in enumerate(transforms):
            transform.set_epoch_randomness(runner.seed, rank, runner.epoch, stream)
        if transforms and loader.num_workers > 0 and loader.persistent_workers:
            self._restart_persistent_workers(loader)

    @staticmethod
    def _restart_persistent_workers(loader) -> None:
        """Make the next ``iter(loader)`` start new workers (with the new keys)."""
        iterator: Optional[object] = getattr(loader, '_iterator', None)
        if iterator is None:
            return
        # DataLoader.__iter__ keeps persistent workers in ``_iterator``; without
        # it a new multi-process iterator (new workers) is made.
        loader._iterator = None
        shutdown = getattr(iterator, '_shutdown_workers', None)
        if shutdown is not None:
            shutdown()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._key_model(runner, PHASE_TRAIN, runner.iter)

    def before_val_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._key_model(runner, PHASE_VAL, batch_idx)

    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._key_model(runner, PHASE_TEST, batch_idx)
