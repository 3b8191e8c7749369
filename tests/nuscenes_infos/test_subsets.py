"""Label-efficient subsets: sizes, nesting, seeding (pure function level).

The end-to-end version on the synthetic world is in test_infos_synthetic.py.
"""
import numpy as np
import pytest

from render_pretrain.nuscenes_infos.subsets import select_subsets, subset_size


def _fake_split(num_scenes=40, frames_per_scene=5):
    scenes = [f'scene-{i:04d}' for i in range(num_scenes) for _ in range(frames_per_scene)]
    tokens = [f'tok{i:05d}' for i in range(len(scenes))]
    return tokens, scenes


@pytest.mark.parametrize('by', ['scene', 'frame'])
def test_subset_sizes_nested_and_seeded(by):
    tokens, scenes = _fake_split()
    pcts = (1, 5, 10, 50, 100)
    subsets = select_subsets(tokens, scenes, pcts, by=by, seed=0)
    total_units = 40 if by == 'scene' else 200
    previous = set()
    for pct in pcts:
        idx = subsets[pct]
        units = {scenes[i] for i in idx} if by == 'scene' else set(idx)
        assert abs(len(units) - pct / 100 * total_units) <= 1
        if by == 'scene':  # whole scenes only
            assert len(idx) == 5 * len(units)
        assert previous <= set(idx)
        previous = set(idx)
    assert subsets[100] == list(range(200))
    assert select_subsets(tokens, scenes, pcts, by=by, seed=0) == subsets
    other = select_subsets(tokens, scenes, pcts, by=by, seed=1)
    assert other[10] != subsets[10]


def test_subset_size_bounds():
    assert subset_size(1, 8) == 1  # never empty
    assert subset_size(50, 8) == 4
    assert subset_size(100, 8) == 8
    with pytest.raises(ValueError, match='percentage'):
        subset_size(0, 8)
    with pytest.raises(ValueError, match='subset mode'):
        select_subsets(['a'], ['s'], (10,), by='camera')
    assert np.isclose(subset_size(12.5, 8), 1)
