"""Random generators derived from integer keys (run seed, rank, epoch, worker, iteration).

Every random draw of training (image augmentation in the data workers,
image / voxel masks and rays in the models) comes from a generator whose
seed is a stable hash (``numpy.random.SeedSequence``) of integer keys. The
keys name where the draws happen, so that draws

- are reproducible from the run's seed (no OS entropy),
- differ across DataLoader workers, epochs, DDP ranks and iterations,
- resume exactly: a resumed run derives the same generators as the
  uninterrupted one from the same keys, so no generator state needs to be
  saved in a checkpoint.

``SeedSequence`` pads its entropy with zeros (the keys ``(1, 2)`` and
``(1, 2, 0)`` give the same state), so the number of keys is hashed with
them. The first key of every stream is a domain constant
(:data:`DATA_DOMAIN`, :data:`MODEL_DOMAIN`) so that data and model streams
never coincide.

The mmengine side (a hook that sets the keys from the runner) lives in
``projects/common/seeded_randomness_hook.py``; this module imports no
OpenMMLab package.
"""
import os
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

DATA_DOMAIN = 0x5EED_DA7A
MODEL_DOMAIN = 0x5EED_40DE

# Phases of the model keys (train, val, test iterations draw from different streams).
PHASE_TRAIN, PHASE_VAL, PHASE_TEST = 0, 1, 2


def derive_seed_sequence(*keys: int) -> np.random.SeedSequence:
    """A ``SeedSequence`` that is a stable hash of the ordered integer keys.

    Args:
        *keys (int): One or more non-negative integers (e.g. domain, run seed,
            rank, epoch, worker id).

    Returns:
        np.random.SeedSequence: Same keys -> same sequence in every process
        and on every machine; keys of different length never collide.

    Raises:
        ValueError: If no key is given or a key is negative / not an integer.
    """
    if not keys:
        raise ValueError('derive_seed_sequence needs at least one key')
    entropy = []
    for key in keys:
        if isinstance(key, (bool, float)) or int(key) != key or int(key) < 0:
            raise ValueError(f'seed keys must be non-negative integers, got {keys}')
        entropy.append(int(key))
    return np.random.SeedSequence([len(entropy)] + entropy)


def derive_numpy_generator(*keys: int) -> np.random.Generator:
    """A numpy ``Generator`` (PCG64) seeded by :func:`derive_seed_sequence`."""
    return np.random.default_rng(derive_seed_sequence(*keys))


def derive_torch_seed(*keys: int) -> int:
    """A 63-bit ``torch.Generator`` seed hashed from the keys."""
    return int(derive_seed_sequence(*keys).generate_state(1, np.uint64)[0] >> np.uint64(1))


def derive_torch_generator(*keys: int,
                           device: Union[str, torch.device] = 'cpu') -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded by :func:`derive_torch_seed`."""
    return torch.Generator(device=device).manual_seed(derive_torch_seed(*keys))


def _seed_from_global_torch_rng() -> int:
    """A non-negative seed drawn from torch's global RNG.

    mmengine seeds the global RNG with the run's seed in the main process and
    with ``seed + rank * num_workers + worker_id`` in each DataLoader worker
    (torch itself seeds each worker with ``base_seed + worker_id``), so this
    never falls back to OS entropy.
    """
    return int(torch.randint(0, 2**62, ()).item())


def _current_worker() -> Tuple[int, int]:
    """(process id, DataLoader worker id or -1 in the main process)."""
    info = torch.utils.data.get_worker_info()
    return os.getpid(), (-1 if info is None else int(info.id))


class EpochSeededTransformMixin:
    """Gives a data transform ``self.rng``: a numpy Generator per worker and epoch.

    With a key set by :meth:`set_epoch_randomness` (mmengine's
    ``SeededRandomnessHook`` does it on the training pipeline before every
    epoch) the generator of DataLoader worker ``w`` (``w = -1`` in the main
    process) is ``derive_numpy_generator(DATA_DOMAIN, seed, rank, epoch,
    stream, w + 1)``, created lazily in the worker on the first draw and used
    sequentially within the epoch. With a fixed ``num_workers`` each worker
    loads a fixed list of samples in a fixed order, so the draws of an epoch
    are a function of the run's seed: same seed -> same draws, and a run
    resumed at an epoch boundary draws exactly what the uninterrupted run
    drew.

    Without a key (a transform used outside a Runner) the generator of each
    process / worker is seeded from ``self.seed`` and the worker id, or,
    when ``seed`` is None, from a draw of torch's global RNG, which torch and
    mmengine seed per worker (never from OS entropy).

    Subclasses call :meth:`init_randomness` in ``__init__``. Assigning
    ``self.rng = generator`` pins a generator for the current process until
    the next key.
    """

    def init_randomness(self, seed: Optional[int] = None) -> None:
        """Start without a key.

        Args:
            seed (int, optional): Replaces the run's seed in the key (draws
                still differ across ranks, epochs and workers).
        """
        self.seed = None if seed is None else int(seed)
        self._random_key: Optional[Tuple[int, ...]] = None
        self._rng: Optional[np.random.Generator] = None
        self._rng_owner: Optional[tuple] = None

    def set_epoch_randomness(self, seed: int, rank: int, epoch: int, stream: int) -> None:
        """Key the draws of the coming epoch.

        Args:
            seed (int): The run's seed (``runner.seed``); ``self.seed``
                replaces it when set.
            rank (int): Distributed rank.
            epoch (int): 0-based epoch about to start.
            stream (int): Index of this transform among the pipeline's seeded
                transforms (two transforms never share a stream).
        """
        base = seed if self.seed is None else self.seed
        self._random_key = (DATA_DOMAIN, int(base), int(rank), int(epoch), int(stream))
        self._rng = None

    @property
    def rng(self) -> np.random.Generator:
        """The generator of the current process / worker and epoch key."""
        pid, worker = _current_worker()
        owner = (pid, worker, self._random_key)
        if self._rng is None or self._rng_owner != owner:
            if self._random_key is not None:
                self._rng = derive_numpy_generator(*self._random_key, worker + 1)
            elif self.seed is not None:
                self._rng = derive_numpy_generator(DATA_DOMAIN, self.seed, worker + 1)
            else:
                self._rng = derive_numpy_generator(DATA_DOMAIN, _seed_from_global_torch_rng())
            self._rng_owner = owner
        return self._rng

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        pid, worker = _current_worker()
        self._rng = generator
        self._rng_owner = (pid, worker, self._random_key)


class KeyedTorchGenerators:
    """``torch.Generator`` s of a model, re-derived from a key every iteration.

    :meth:`set_key` (called by ``SeededRandomnessHook`` before every
    iteration with ``(seed, rank, phase, iteration)``) drops the generators;
    :meth:`get` then derives the one of a device as
    ``derive_torch_generator(MODEL_DOMAIN, *key, device_stream)`` (CPU stream
    0, accelerator ``k`` stream ``k + 1``). Everything drawn in an iteration
    is therefore a function of the run's seed, the rank and the iteration:
    ranks draw different masks, and a resumed run draws what the
    uninterrupted one drew without any generator state in the checkpoint.

    Without a key (a model used outside a Runner) each device's generator is
    seeded once from ``seed``, or from a draw of torch's global RNG when
    ``seed`` is None, and then used sequentially.

    Args:
        seed (int, optional): Replaces the run's seed in the key.
    """

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = None if seed is None else int(seed)
        self._key: Optional[Tuple[int, ...]] = None
        self._fallback_seed: Optional[int] = None
        self._generators: Dict[torch.device, torch.Generator] = dict()

    def set_key(self, seed: int, *keys: int) -> None:
        """Re-derive the generators from ``(seed or self.seed, *keys)``."""
        base = seed if self.seed is None else self.seed
        self._key = (MODEL_DOMAIN, int(base)) + tuple(int(k) for k in keys)
        self._generators = dict()

    def get(self, device: Union[str, torch.device] = 'cpu') -> torch.Generator:
        """The generator on ``device`` for the current key (created lazily)."""
        device = torch.device(device)
        if device.type != 'cpu' and device.index is None:
            device = torch.device(device.type, 0)  # tensors always carry their index
        if device not in self._generators:
            stream = 0 if device.type == 'cpu' else 1 + int(device.index)
            if self._key is not None:
                keys = self._key
            else:
                if self._fallback_seed is None:
                    self._fallback_seed = (self.seed if self.seed is not None else
                                           _seed_from_global_torch_rng())
                keys = (MODEL_DOMAIN, self._fallback_seed)
            self._generators[device] = derive_torch_generator(*keys, stream, device=device)
        return self._generators[device]
