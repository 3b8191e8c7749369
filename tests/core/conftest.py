"""Fixtures of the core tests."""
import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a loop of tiny ops on one intra-op thread (restored afterwards).

    With many small tensors, extra OpenMP threads only add synchronisation,
    which costs several-fold on a loaded 2-core machine.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
