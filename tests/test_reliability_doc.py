"""docs/reliability.md: the cases tried (damaged data, extreme settings,
interrupted runs, misused commands) and their outcomes.

The table is generated from :data:`CASES`; each row names the test that
asserts its outcome. ``test_doc_table_is_generated`` fails when the doc and
this list differ; ``python -m tests.test_reliability_doc`` rewrites the doc's
table. ``test_each_case_names_a_test`` fails when a named test is gone.
"""
import importlib
import sys
from pathlib import Path

from render_pretrain.paths import REPO_ROOT

DOC = REPO_ROOT / 'docs' / 'reliability.md'
BEGIN = '<!-- BEGIN GENERATED TABLE (tests/test_reliability_doc.py) -->'
END = '<!-- END GENERATED TABLE -->'

#: (area, case tried, outcome, ``module::test`` that asserts the outcome).
CASES = [
    ('converter', 'output path is the input (same path, `../` spelling, symlink, hard link), '
     'with or without `--overwrite`', 'error "is the input checkpoint", exit 1, input untouched',
     'tests/converters/test_converter_safety.py::test_output_is_input_refused'),
    ('converter', 'output file exists', 'error "exists; pass --overwrite", file untouched; '
     'replaced with `--overwrite`',
     'tests/converters/test_converter_safety.py::test_existing_output_needs_overwrite'),
    ('converter', 'NS-MAE camera + LiDAR checkpoint declared `--src-layout mim4d`',
     'error: 136 of 336 tensors (40 %) unknown to the table (limit 25 %), nothing written; '
     '`--allow-unmapped` writes', 'tests/converters/test_converter_safety.py::'
     'test_wrong_layout_mapping_little_fails'),
    ('converter', 'source empty, text, or truncated to half', 'error "<file> is not a readable '
     'checkpoint", nothing written',
     'tests/converters/test_converter_safety.py::test_broken_source_named'),
    ('converter', 'source pickle calls `os.system`', 'refused ("<file>: refused to load", '
     'names `posix.system`); the command did not run',
     'tests/converters/test_converter_safety.py::test_crafted_source_refused_without_running'),
    ('converter', 'umask 022', 'output mode 0644 (was 0600)',
     'tests/converters/test_converter_safety.py::test_output_mode_follows_umask'),
    ('checkpoints', 'crafted checkpoint through mmengine `_load_checkpoint` (`load_from`, '
     '`--resume`): `os.system`, `exec`, `getattr(HistoryBuffer, "__init__")`',
     'UntrustedCheckpointError naming the file; the marker file is not created',
     'tests/test_compat.py::test_crafted_checkpoint_is_refused_without_running'),
    ('checkpoints', 'real Runner checkpoint (AdamW, scheduler, message hub)',
     'resumes at the saved iteration and loads as `load_from` under weights-only loading',
     'tests/test_compat.py::test_real_runner_checkpoint_resumes_and_loads'),
    ('checkpoints', '`--resume` / `load_from` of an empty, text or half-written file',
     'CorruptCheckpointError "<file> is not a readable checkpoint"',
     'tests/test_compat.py::test_corrupt_checkpoint_named'),
    ('checkpoints', '`--resume` of a half-written Runner checkpoint',
     'fails before the first iteration: "<file> is not a readable checkpoint"',
     'tests/test_compat.py::test_resume_of_a_truncated_checkpoint_names_it'),
    ('checkpoints', 'save killed half-way (file-size limit during the CheckpointHook save)',
     'upstream: truncated epoch_1.pth; now: the previous file intact or no file, no temporary '
     'left', 'tests/test_compat.py::test_interrupted_save_leaves_old_or_nothing'),
    ('NS-MAE', '0, 1, 2 or 3 kept voxels (LiDAR-only and camera + LiDAR tiny configs)',
     'finite losses and gradients (1 kept voxel raised "Expected more than 1 value per '
     'channel")', 'tests/nsmae/test_sparse_frames.py::'
     'test_few_kept_voxels_train_with_finite_losses'),
    ('NS-MAE', 'one kept voxel: the BatchNorm that sees one value per channel',
     'normalises with its running statistics and leaves them unchanged',
     'tests/nsmae/test_sparse_frames.py::test_single_voxel_uses_running_stats_and_leaves_them'),
    ('NS-MAE', '`voxel_mask_ratio=0`', 'warns that the BEV target is empty by construction '
     '(`loss_bev_depth` = 0)', 'tests/nsmae/test_sparse_frames.py::'
     'test_zero_voxel_mask_ratio_warns_that_bev_target_is_empty'),
    ('create_data', 'key-frame LiDAR points with NaN / Inf; undecodable or truncated key-frame '
     'image; sample without CAM_BACK', 'error naming the file / sample; with '
     '`--skip-invalid-samples` the sample is left out and counted per reason',
     'tests/nuscenes_infos/test_data_validation.py::'
     'test_invalid_key_frame_fails_or_is_skipped_and_counted'),
    ('create_data', 'NaN LiDAR points and the ground-truth database', 'no database written '
     'on error; with `--skip-invalid-samples` every database point is finite',
     'tests/nuscenes_infos/test_data_validation.py::test_nan_points_never_reach_the_gt_database'),
    ('create_data', 'data root without `maps/`', 'error "pass --no-map"; converts with '
     '`--no-map` (the devkit asserted)',
     'tests/nuscenes_infos/test_data_validation.py::test_root_without_maps_converts_with_no_map'),
    ('training data', 'truncated LiDAR file, undecodable image (stock mmdet3d pipeline of the '
     'tiny NS-MAE config)', 'DataFileError naming the sample and the file with its problem '
     '(upstream: numpy / NoneType errors without a path)',
     'tests/nuscenes_infos/test_training_data_errors.py::test_damaged_sample_file_is_named'),
    ('training data', 'empty or truncated info `.pkl`', 'DataFileError "annotation file <pkl> '
     'cannot be read"',
     'tests/nuscenes_infos/test_training_data_errors.py::test_damaged_info_pkl_is_named'),
]


def generated_table() -> str:
    """The Markdown table of :data:`CASES`."""
    lines = ['| area | case tried | outcome | test |', '| --- | --- | --- | --- |']
    for area, case, outcome, test in CASES:
        lines.append(f'| {area} | {case} | {outcome} | `{test.split("::")[1]}` '
                     f'({test.split("::")[0]}) |')
    return '\n'.join(lines)


def doc_table(text: str) -> str:
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_doc_table_is_generated():
    assert DOC.is_file(), f'{DOC} missing: run python -m tests.test_reliability_doc'
    assert doc_table(DOC.read_text()) == generated_table(), \
        'docs/reliability.md differs from CASES: run python -m tests.test_reliability_doc'


def test_each_case_names_a_test():
    for *_, test in CASES:
        path, name = test.split('::')
        module = importlib.import_module(path[:-len('.py')].replace('/', '.'))
        assert callable(getattr(module, name, None)), test


def test_readme_links_the_doc():
    assert '(docs/reliability.md)' in (REPO_ROOT / 'README.md').read_text()


def write_doc(path: Path = DOC) -> None:
    """Replace the generated table in ``path`` (between the markers)."""
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f'{head}{BEGIN}\n{generated_table()}\n{END}{tail}')


if __name__ == '__main__':
    write_doc(Path(sys.argv[1]) if len(sys.argv) > 1 else DOC)
