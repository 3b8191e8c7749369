"""Fixtures of the info-preparation tests."""
import os
import shutil

import pytest

VERSION = 'v1.0-mini'


@pytest.fixture
def world_copy(synthetic_world, tmp_path):
    """A copy of the synthetic world: tables copied, sensor files symlinked."""
    root = tmp_path / 'world'
    shutil.copytree(synthetic_world, root, symlinks=False, copy_function=os.symlink,
                    ignore=shutil.ignore_patterns(VERSION))
    shutil.copytree(synthetic_world / VERSION, root / VERSION)
    return root
