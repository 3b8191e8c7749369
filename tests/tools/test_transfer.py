"""Transfer experiment (issue #7): the small chain end to end, and the README table.

The end-to-end test runs every chain (NS-MAE -> CenterPoint, MIM4D ->
BEVDet, NS-MAE C+L and C -> BEV map segmentation, MIM4D -> camera BEV map
segmentation, sharing MIM4D's pre-training; NS-MAE -> stock BEVFusion with an
mmdetection3d checkout) on the session synthetic world (3 scenes x 4 key
frames, 176x64) through the project's CLIs as subprocesses: 1 pre-training
epoch (validated before and after: render PSNR / depth error), strict
conversion, 1 fine-tuning epoch on the 10 % fraction (1 of the 2 train
scenes) from scratch and from the converted
weights, evaluation with NuScenesMetric (detection) or BEVMapSegMetric
(segmentation) on the 4 val frames.
"""
import copy
import json
import math
from pathlib import Path

import pytest
import torch

from tools.transfer.chains import CHAINS
from tools.transfer.configs import stretch_schedule
from tools.transfer.experiment import (INITS, RESULTS_SCHEMA, ExperimentSettings, check_results,
                                       run_experiment, save_results)
from tools.transfer.metrics import parse_metrics
from tools.transfer.steps import TransferExperimentError
from tools.transfer.table import (END_MARKER, START_MARKER, TransferTableError,
                                  append_history, render_table, replace_readme_block)

FRACTION = 10


def _checkout_available() -> bool:
    """An mmdetection3d checkout for the stock BEVFusion chain ($MMDET3D_ROOT,
    ../mmdetection3d or the shared upstream copy)."""
    import os
    from tools.utils.runner_cli import DEFAULT_MMDET3D_ROOT
    from render_pretrain.paths import upstream_mmdet3d_dir
    return bool(os.environ.get('MMDET3D_ROOT') or os.path.isdir(DEFAULT_MMDET3D_ROOT)
                or (upstream_mmdet3d_dir() / 'projects' / 'BEVFusion').is_dir())


# The stock BEVFusion chain needs mmdetection3d's BEVFusion project; without a
# checkout (no ../shared beside the clone) the other chains still run.
RUN_CHAINS = tuple(name for name in CHAINS
                   if _checkout_available() or not CHAINS[name].needs_mmdet3d_checkout)


@pytest.fixture(scope='module')
def experiment(synthetic_infos, tmp_path_factory):
    """Results of the small experiment, its settings and its progress lines."""
    if RUN_CHAINS != tuple(CHAINS):
        print('transfer test: no mmdetection3d checkout (MMDET3D_ROOT, ../mmdetection3d or '
              '../shared/upstream): the stock BEVFusion chain is left out')
    settings = ExperimentSettings(
        world_dir=synthetic_infos['root'], info_dir=synthetic_infos['out_dir'],
        work_dir=tmp_path_factory.mktemp('transfer'), pretrain_epochs=1, finetune_epochs=1,
        fractions=(FRACTION, ), seed=3, seeds=1, chains=RUN_CHAINS)
    lines, emitted = [], []
    results = run_experiment(settings, progress=lines.append, emit=emitted.append)
    print('transfer test steps:', *lines, sep='\n  ')  # wall time of each step (pytest -s)
    return dict(results=results, settings=settings, lines=lines, emitted=emitted)


@pytest.mark.subprocess
def test_every_run_has_finite_metrics(experiment):
    results = experiment['results']
    check_results(results)
    runs = results['runs']
    assert [(r['chain'], r['fraction'], r['init']) for r in runs] == [
        (chain, FRACTION, init) for chain in RUN_CHAINS for init in INITS]
    assert experiment['emitted'] == runs
    for run in runs:
        assert run['seed'] == 3 and run['epochs'] == 1
        assert set(run['metrics']) == set(CHAINS[run['chain']].metric_keys)
        for value in run['metrics'].values():
            assert math.isfinite(value) and 0.0 <= value <= 1.0, run
        # 4 train frames (1 scene): batch 2 for the detectors, 1 for segmentation
        expected = 4 if run['chain'] in ('nsmae-bevseg', 'nsmae-cam-bevseg', 'mim4d-bevseg') else 2
        assert run['iterations'] == expected and math.isfinite(run['loss_last'])
        assert run['checkpoint_loaded'] is (True if run['init'] == 'pretrained' else None)
    world = results['world']
    assert (world['train_frames'], world['val_frames']) == (8, 4)
    assert world['fractions'][str(FRACTION)]['frames'] == 4
    for chain in RUN_CHAINS:
        pre = results['chains'][chain]['pretrain']
        assert pre['iterations'] == 8 and math.isfinite(pre['loss_last'])
        # held-out render quality before the first step and after the last epoch
        quality = pre['render_quality']
        assert (quality['start_epoch'], quality['end_epoch']) == (0, 1)
        # LiDAR-only NS-MAE renders no images: its BEV height error only
        rendered = ({'bev_height_abs_err'} if chain == 'nsmae-centerpoint'
                    else {'psnr', 'depth_abs_err'})
        assert rendered <= set(quality['start']) == set(quality['end'])
        for name, start in quality['start'].items():
            end = quality['end'][name]
            assert math.isfinite(start) and math.isfinite(end) and start != end, (chain, name)
            if name != 'psnr':
                assert start >= 0 and end >= 0
        assert results['chains'][chain]['spec']['metric_keys'] == CHAINS[chain].metric_keys
    # the two MIM4D chains share one pre-training run (same config)
    mim4d = [results['chains'][c]['pretrain'] for c in ('mim4d-bevdet', 'mim4d-bevseg')]
    assert mim4d[0]['checkpoint'] == mim4d[1]['checkpoint'] and mim4d[0] == mim4d[1]
    assert sum('-pretrain-' in line and 'finished' in line for line in experiment['lines']) == \
        len({CHAINS[c].pretrain_config for c in RUN_CHAINS})
    assert results['schema'] == RESULTS_SCHEMA and results['versions']['mmdet3d'] == '1.4.0'
    assert len(results['git']['commit']) == 40


@pytest.mark.parametrize('chain', list(CHAINS))
@pytest.mark.subprocess
@pytest.mark.runner
def test_fine_tuning_starts_from_the_converted_weights(experiment, chain, tmp_path):
    """The Runner of the pre-trained run holds the converted tensors before
    its first iteration; the scratch run (same seed) does not."""
    if chain not in RUN_CHAINS:
        pytest.skip(f'{chain} needs an mmdetection3d checkout (MMDET3D_ROOT, '
                    '../mmdetection3d or ../shared/upstream)')
    from mmengine.config import Config
    from mmengine.runner import Runner
    results = experiment['results']
    path = results['chains'][chain]['convert']['checkpoint']
    converted = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    assert converted
    runs = {run['init']: run for run in results['runs'] if run['chain'] == chain}
    assert runs['pretrained']['load_from'] == path and runs['scratch']['load_from'] is None
    states = {}
    for init in INITS:
        cfg = Config.fromfile(str(Path(runs[init]['work_dir']) / 'config.py'))
        cfg.work_dir = str(tmp_path / init)
        runner = Runner.from_cfg(cfg)
        runner.load_or_resume()
        states[init] = runner.model.state_dict()
    for key, value in converted.items():
        torch.testing.assert_close(states['pretrained'][key], value, rtol=0, atol=0, msg=key)
    differ = [key for key, value in converted.items()
              if value.is_floating_point() and value.numel() > 1
              and not torch.equal(states['scratch'][key], value)]
    assert len(differ) > 0.5 * len(converted)


@pytest.mark.subprocess
def test_rerun_skips_finished_steps(experiment):
    lines = []
    again = run_experiment(copy.copy(experiment['settings']), progress=lines.append)
    assert lines and all('skipped' in line for line in lines), lines
    assert [r['metrics'] for r in again['runs']] == [r['metrics']
                                                     for r in experiment['results']['runs']]
    assert again['steps_wall_s'] == pytest.approx(experiment['results']['steps_wall_s'])


@pytest.mark.subprocess
def test_results_json_and_table(experiment, tmp_path):
    path = save_results(experiment['results'], tmp_path / 'results.json')
    results = json.loads(path.read_text())
    check_results(results)
    table = render_table(results)
    rows = [line for line in table.splitlines()
            if line.startswith('| ') and 'chain' not in line and '---' not in line]
    assert len(rows) == len(CHAINS)
    for row, chain in zip(rows, CHAINS):
        first_metric = CHAINS[chain].table_metrics[0]
        assert row.startswith(f'| {chain} | {FRACTION} | {first_metric} ')
    assert table.startswith('Fine-tuning seed 3 (') and 'fine-tuning 1 epoch (' in table
    assert 'pre-training once per chain (seed 3)' in table


# ------------------------------------------------------- unit tests


def hand_results() -> dict:
    """Results of a made-up experiment: one chain, pre-training hurts at 100 %."""
    spec = dict(CHAINS['nsmae-centerpoint'].summary())

    def run(init, fraction, m_ap, nds):
        return dict(chain='nsmae-centerpoint', init=init, fraction=fraction, seed=0, epochs=12,
                    metrics=dict(mAP=m_ap, NDS=nds), wall_s=60.0)
    return dict(
        schema=RESULTS_SCHEMA,
        settings=dict(seed=0, pretrain_epochs=4, finetune_epochs=12, resolution='176x64', jobs=2,
                      threads=1),
        world=dict(scenes=10, keyframes=12, resolution=[176, 64], train_frames=96, val_frames=24,
                   subset_by='scene', fractions={'10': dict(frames=12), '100': dict(frames=96)}),
        chains={'nsmae-centerpoint': dict(
            spec=spec, pretrain=dict(
                wall_s=600.0, loss_first=1.5, loss_last=0.25,
                render_quality=dict(start=dict(psnr=9.125, depth_abs_err=8.25),
                                    end=dict(psnr=14.5, depth_abs_err=3.0),
                                    start_epoch=0, end_epoch=4)),
            convert=dict(wall_s=5.0))},
        runs=[run('pretrained', 100, 0.10, 0.20), run('scratch', 100, 0.125, 0.25),
              run('scratch', 10, 0.0, 0.05), run('pretrained', 10, 0.02, 0.0625)],
        wall_s=1500.0, steps_wall_s=2700.0, versions={},
        git=dict(commit='0123456789abcdef' * 2 + '01234567', dirty=False), cpu_count=2)


def test_table_from_hand_written_results():
    """The header and caption; the rows: test_table_rows_from_hand_written_results[one-seed]."""
    table = render_table(hand_results())
    lines = table.splitlines()
    assert lines[2] == ('| chain | labels % | scratch | pre-trained | pre-trained - scratch '
                        '(points, [95 % CI]) | paper (reference) |')
    assert 'fine-tuning 12 epochs' in lines[0]
    assert '10 scenes x 12 key frames at 176x64' in lines[0]
    assert 'labels by scene: 10 % = 12 frames, 100 % = 96 frames' in lines[0]
    assert ('wall time of the last invocation 25.0 min (finished steps of earlier invocations '
            'are reused; 2 steps at a time, 1 thread each, 2 CPU cores; steps total '
            '45.0 min); commit 0123456789.') in lines[0]
    assert ('pre-training loss 1.5 -> 0.25 in 10.0 min; held-out render PSNR 9.12 -> 14.5 dB, '
            'depth error 8.25 -> 3 m (before training -> end).') in table
    assert 'NS-MAE (Xu et al. 2023)' in table


def test_table_of_results_without_render_quality_is_unchanged():
    """Results recorded before the render quality was (docs/results/*.json) render as before."""
    results = hand_results()
    del results['chains']['nsmae-centerpoint']['pretrain']['render_quality']
    assert 'pre-training loss 1.5 -> 0.25 in 10.0 min. Paper: NS-MAE' in render_table(results)


def test_chains_with_one_pretraining_config_share_its_run(tmp_path):
    from tools.transfer.experiment import plan_chain, pretrain_owner
    assert CHAINS['mim4d-bevseg'].pretrain_config == CHAINS['mim4d-bevdet'].pretrain_config
    assert pretrain_owner(CHAINS['mim4d-bevseg']) == 'mim4d-bevdet'
    assert [pretrain_owner(spec) for name, spec in CHAINS.items() if name != 'mim4d-bevseg'] \
        == [name for name in CHAINS if name != 'mim4d-bevseg']
    settings = ExperimentSettings(world_dir=tmp_path / 'world', work_dir=tmp_path / 'work',
                                  chains=('mim4d-bevseg', ), fractions=(100, ))
    plan = plan_chain(CHAINS['mim4d-bevseg'], settings)
    assert plan.pretrain.name == 'mim4d-bevdet-pretrain-pt4e-seed0'
    assert plan.pretrain.outputs[0] == (tmp_path / 'work/mim4d-bevdet/pretrain-pt4e-seed0'
                                        / 'epoch_4.pth')
    assert plan.converted.parent == tmp_path / 'work' / 'mim4d-bevseg'


def test_table_needs_both_inits():
    results = hand_results()
    results['runs'] = [r for r in results['runs']
                       if r['init'] != 'pretrained' or r['fraction'] != 10]
    with pytest.raises(TransferTableError,
                       match=r"nsmae-centerpoint 10 % seed 0: no \['pretrained'\]"):
        render_table(results)


def test_readme_block_is_replaced(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# title\n\n{START_MARKER}\nold table\n{END_MARKER}\n\nafter\n')
    replace_readme_block(readme, 'new table\n')
    assert readme.read_text() == f'# title\n\n{START_MARKER}\nnew table\n{END_MARKER}\n\nafter\n'
    readme.write_text('# no markers\n')
    with pytest.raises(TransferTableError, match='transfer-table:start'):
        replace_readme_block(readme, 'x')


def test_history_keeps_each_run_once(tmp_path):
    history = tmp_path / 'results' / 'history.jsonl'
    first = hand_results()
    first.update(created='2026-12-03T19:56:47+00:00', git=dict(commit='a' * 40, dirty=False))
    assert append_history(history, first) is True
    assert append_history(history, first) is False  # same run rendered again
    second = copy.deepcopy(first)
    second.update(created='2026-12-05T18:00:00+00:00', git=dict(commit='b' * 40, dirty=False))
    second['runs'][0]['metrics']['mAP'] = 0.5
    assert append_history(history, second) is True
    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert [r['git']['commit'] for r in records] == ['a' * 40, 'b' * 40]
    # every (chain, fraction) cell with both inits, values as in the runs (one seed: lists of 1)
    for record, results in zip(records, (first, second)):
        expected = {(r['chain'], r['fraction'], r['init']):
                    {name: [value] for name, value in r['metrics'].items()}
                    for r in results['runs']}
        got = {(c['chain'], c['fraction'], init): c[init]
               for c in record['cells'] for init in ('scratch', 'pretrained')}
        assert got == expected
        assert record['world']['fractions'] == {'10': dict(frames=12), '100': dict(frames=96)}
        assert (record['wall_s'], record['steps_wall_s']) == (1500.0, 2700.0)
        assert record['schedules']['finetune_epochs'] == 12
    history.write_text(history.read_text() + 'not json\n')
    with pytest.raises(TransferTableError, match='history.jsonl:3'):
        append_history(history, hand_results())


def test_table_cli_renders_one_block_per_results_file(tmp_path):
    """Runs made separately (e.g. one chain added later) each keep their setup line and commit."""
    from tools.benchmarks.transfer import main
    first, second = hand_results(), hand_results()
    first.update(created='2026-12-03T19:56:47+00:00', git=dict(commit='a' * 40, dirty=False))
    second.update(created='2026-12-05T19:00:00+00:00', git=dict(commit='b' * 40, dirty=False))
    second['runs'][0]['metrics']['mAP'] = 0.5
    paths = []
    for name, results in (('first', first), ('second', second)):
        paths.append(tmp_path / f'{name}.json')
        paths[-1].write_text(json.dumps(results))
    readme, history = tmp_path / 'README.md', tmp_path / 'history.jsonl'
    readme.write_text(f'# title\n{START_MARKER}\nold\n{END_MARKER}\n')
    argv = ['--table', *map(str, paths), '--readme', str(readme), '--history', str(history)]
    assert main(argv) == 0
    text = readme.read_text()
    block = text[text.index(START_MARKER) + len(START_MARKER):text.index(END_MARKER)]
    assert block.count('| chain | labels % |') == 2
    assert block.index('commit aaaaaaaaaa') < block.index('commit bbbbbbbbbb')
    assert 'mAP 50.00' in block.split('commit bbbbbbbbbb')[1]
    assert 'old' not in block
    assert len(history.read_text().splitlines()) == 2
    # a bad file fails naming it and changes nothing
    bad = tmp_path / 'bad.json'
    bad.write_text('{')
    assert main(['--table', str(paths[0]), str(bad), '--readme', str(readme)]) == 1
    assert readme.read_text() == text


def test_tiny_negative_delta_is_not_minus_zero():
    results = hand_results()
    results['runs'][0]['metrics'] = dict(mAP=0.12499, NDS=0.25)  # pretrained, 100 %
    row = render_table(results).splitlines()[5]
    assert '| mAP +0.00 [n/a (1 seed)] / NDS +0.00 [n/a (1 seed)] |' in row


def test_check_results_rejects_bad_metrics():
    results = hand_results()
    results['runs'][0]['metrics']['mAP'] = float('nan')
    with pytest.raises(TransferExperimentError, match='pretrained: mAP = nan'):
        check_results(results)


def test_metrics_parsed_from_scalars(tmp_path):
    scalars = tmp_path / 'scalars.json'
    rows = [dict(loss=3.0, step=1),
            {'NuScenes metric/pred_instances_3d_NuScenes/mAP': 0.25,
             'NuScenes metric/pred_instances_3d_NuScenes/NDS': 0.5,
             'NuScenes metric/pred_instances_3d_NuScenes/car_vel_err': float('nan'), 'step': 2}]
    scalars.write_text('\n'.join(json.dumps(row) for row in rows) + '\n')
    keys = CHAINS['mim4d-bevdet'].metric_keys
    assert parse_metrics(scalars, keys) == dict(mAP=0.25, NDS=0.5)
    with pytest.raises(TransferExperimentError, match='no evaluation row'):
        parse_metrics(scalars, dict(mIoU='BEVSeg metric/mIoU'))


def test_render_quality_at_start_and_end_from_scalars(tmp_path):
    """Rows as mmengine's LoggerHook writes them: training losses at their
    iteration, validation metrics at their epoch (0: before training)."""
    from tools.transfer.metrics import render_quality
    scalars = tmp_path / 'scalars.json'
    rows = [{'render/psnr': 6.5, 'render/depth_abs_err': 12.0, 'step': 0},
            dict(loss=3.0, step=1), dict(loss=2.0, step=2),
            {'render/psnr': 8.0, 'render/depth_abs_err': 10.0, 'step': 1},
            dict(loss=1.0, step=3),
            {'render/psnr': 11.25, 'render/depth_abs_err': 4.5, 'step': 2}]
    scalars.write_text('\n'.join(json.dumps(row) for row in rows) + '\n')
    assert render_quality(scalars) == dict(
        start=dict(psnr=6.5, depth_abs_err=12.0), end=dict(psnr=11.25, depth_abs_err=4.5),
        start_epoch=0, end_epoch=2)
    # no validation before training: the first row is after epoch 1
    scalars.write_text('\n'.join(json.dumps(row) for row in rows[1:]) + '\n')
    with pytest.raises(TransferExperimentError, match='at step 1, not 0'):
        render_quality(scalars)
    scalars.write_text(json.dumps(rows[1]) + '\n' + json.dumps(rows[0]) + '\n')
    with pytest.raises(TransferExperimentError, match='1 render-quality validation row'):
        render_quality(scalars)


def test_pretraining_config_validates_before_training(tmp_path):
    from mmengine.config import Config
    from tools.transfer.configs import write_run_config
    spec = CHAINS['nsmae-cam-bevseg']
    world, ann = tmp_path / 'world', tmp_path / 'train.pkl'
    path = write_run_config(spec.pretrain_config, tmp_path / 'config.py', world, ann,
                            tmp_path / 'val.pkl', 3, 0, validate_first=True)
    cfg = Config.fromfile(str(path))
    assert cfg.custom_hooks[-1] == dict(type='ValidateBeforeTrainHook')
    assert cfg.val_evaluator.type == 'RenderQualityMetric'
    assert cfg.val_dataloader.dataset.ann_file == str(tmp_path / 'val.pkl')
    with pytest.raises(ValueError, match='validate_first needs evaluate=True'):
        write_run_config(spec.pretrain_config, tmp_path / 'c2.py', world, ann,
                         tmp_path / 'val.pkl', 3, 0, evaluate=False, validate_first=True)


def test_schedule_is_stretched_to_the_epochs():
    from tools.utils import load_config
    cfg = load_config(str(Path(__file__).resolve().parents[2] / CHAINS['mim4d-bevdet']
                          .downstream_config))
    warmup, step = copy.deepcopy(cfg.param_scheduler)
    stretch_schedule(cfg, 12)
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_cfg.val_interval == 12
    assert cfg.param_scheduler[0] == warmup  # iteration-based warm-up kept
    assert (step.end, step.milestones) == (2, [2])
    assert (cfg.param_scheduler[1].end, cfg.param_scheduler[1].milestones) == (12, [12])
    assert cfg.default_hooks.checkpoint.interval == 12


def _write_step(tmp_path, name, code, inputs=()):
    import sys
    from tools.transfer.steps import Step
    out = tmp_path / f'{name}.txt'
    return Step(name=name, argv=[sys.executable, '-c', code, str(out)], outputs=[out],
                log=tmp_path / f'{name}.log', inputs=list(inputs))


@pytest.mark.subprocess
def test_step_runner_skips_done_steps_and_reruns_on_new_input(tmp_path):
    import os
    from tools.transfer.steps import StepRunner
    source = tmp_path / 'input.txt'
    source.write_text('a')
    code = 'import sys, pathlib; pathlib.Path(sys.argv[1]).write_text("ok"); print("ran")'
    step = _write_step(tmp_path, 'copy', code, inputs=[source])
    lines = []
    runner = StepRunner(tmp_path / 'work', tmp_path, progress=lines.append)
    first = runner.run(step)
    assert not first['skipped'] and step.outputs[0].read_text() == 'ok'
    assert 'ran' in step.log.read_text()
    assert runner.run(step)['skipped'] and lines[-1].endswith('skipped')
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # input re-made
    assert not runner.run(step)['skipped']
    forced = StepRunner(tmp_path / 'work', tmp_path, force=True, progress=lines.append)
    assert not forced.run(step)['skipped']


@pytest.mark.subprocess
def test_step_runner_reports_failures_with_the_log(tmp_path):
    from tools.transfer.steps import StepError, StepRunner
    runner = StepRunner(tmp_path / 'work', tmp_path, progress=lambda line: None)
    failing = _write_step(tmp_path, 'fails', 'import sys; sys.exit(3)')
    with pytest.raises(StepError, match=r'step fails failed with exit code 3 .*fails\.log'):
        runner.run(failing)
    silent = _write_step(tmp_path, 'silent', 'pass')
    with pytest.raises(StepError, match=r'did not write .*silent\.txt'):
        runner.run(silent)
    assert not (tmp_path / 'work' / 'steps' / 'fails.json').exists()


@pytest.mark.subprocess
def test_step_pool_runs_dependencies_first(tmp_path):
    from tools.transfer.steps import StepPool, StepRunner
    runner = StepRunner(tmp_path / 'work', tmp_path, progress=lambda line: None)
    first = _write_step(tmp_path, 'first', 'import sys, pathlib, time; time.sleep(0.5); '
                        'pathlib.Path(sys.argv[1]).write_text("1")')
    code = ('import sys, pathlib; src = pathlib.Path(sys.argv[1]).with_name("first.txt"); '
            'pathlib.Path(sys.argv[1]).write_text(src.read_text() + "2")')
    second = _write_step(tmp_path, 'second', code)
    pool = StepPool(runner, jobs=2)
    done = pool.submit(first)
    after = pool.submit(second, [done])
    assert after.result()['name'] == 'second'
    pool.close()
    assert second.outputs[0].read_text() == '12'


def test_bevfusion_chain_is_the_tiny_stock_model_from_the_tiny_nsmae_encoder():
    spec = CHAINS['nsmae-bevfusion']
    assert spec.needs_mmdet3d_checkout and spec.dst_layout == 'mmdet3d-bevfusion'
    assert spec.modules == ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder',
                            'fusion_layer')
    # the strict conversion between exactly these configs: test_stock_bevfusion_tiny.py
    from tests.downstream.test_stock_bevfusion_tiny import NSMAE_TINY, TINY
    assert spec.pretrain_config == NSMAE_TINY
    assert Path(__file__).resolve().parents[2] / spec.downstream_config == TINY
    assert [name for name, s in CHAINS.items() if s.needs_mmdet3d_checkout] == ['nsmae-bevfusion']


def test_chains_find_the_mmdet3d_checkout(tmp_path, monkeypatch):
    import os
    from tools.utils import runner_cli
    from tools.transfer.chains import find_mmdet3d_checkout
    monkeypatch.setattr('sys.path', list(__import__('sys').path))
    monkeypatch.delenv('MMDET3D_ROOT', raising=False)
    monkeypatch.setattr(runner_cli, 'DEFAULT_MMDET3D_ROOT', str(tmp_path / 'no-checkout'))
    assert find_mmdet3d_checkout(['nsmae-centerpoint']) is None
    monkeypatch.setenv('RENDER_PRETRAIN_SHARED', str(tmp_path / 'no-shared'))
    with pytest.raises(TransferExperimentError, match='MMDET3D_ROOT=/path/to/mmdetection3d'):
        find_mmdet3d_checkout(['nsmae-centerpoint', 'nsmae-bevfusion'])
    shared = tmp_path / 'shared'
    (shared / 'upstream' / 'mmdetection3d-v1.4.0' / 'projects' / 'BEVFusion').mkdir(parents=True)
    monkeypatch.setenv('RENDER_PRETRAIN_SHARED', str(shared))
    found = find_mmdet3d_checkout(['nsmae-bevfusion'])
    assert found == str(shared / 'upstream' / 'mmdetection3d-v1.4.0')
    assert os.environ['MMDET3D_ROOT'] == found  # for the train / convert subprocesses
    checkout = tmp_path / 'mine'
    checkout.mkdir()
    monkeypatch.setenv('MMDET3D_ROOT', str(checkout))
    assert find_mmdet3d_checkout(['nsmae-bevfusion']) == str(checkout)  # the user's wins


# ------------------------------------------------- several seeds (hand-made)


def hand_results_seeds() -> dict:
    """Results of a made-up 3-seed experiment with hand-computed statistics.

    10 %: mAP diffs (points) [1, 2, 3] -> +2.00, half-width 4.303 / sqrt(3) = 2.48 (contains 0);
    NDS diffs [2, 2.1, 1.9] -> +2.00 +- 0.248 (excludes 0). 100 %: mAP diffs [-3, -3.2, -2.8]
    -> -3.00 +- 0.497 (excludes 0); NDS equal for every seed -> +0.00 [+0.00, +0.00].
    """
    results = hand_results()
    values = {  # (fraction, init): (mAP per seed, NDS per seed)
        (10, 'scratch'): ([0.00, 0.01, 0.02], [0.10, 0.11, 0.12]),
        (10, 'pretrained'): ([0.01, 0.03, 0.05], [0.12, 0.131, 0.139]),
        (100, 'scratch'): ([0.20, 0.22, 0.24], [0.3, 0.3, 0.3]),
        (100, 'pretrained'): ([0.17, 0.188, 0.212], [0.3, 0.3, 0.3]),
    }
    results['runs'] = [
        dict(chain='nsmae-centerpoint', init=init, fraction=fraction, seed=seed, epochs=12,
             metrics=dict(mAP=m_ap[seed], NDS=nds[seed]), wall_s=60.0)
        for seed in (2, 0, 1) for (fraction, init), (m_ap, nds) in values.items()]
    results['settings'].update(seeds=3, finetune_seeds=[0, 1, 2])
    return results


@pytest.mark.parametrize('results, row_10, row_100, caption', [
    (hand_results,
     '| nsmae-centerpoint | 10 | mAP 0.00 / NDS 5.00 | mAP 2.00 / NDS 6.25 | '
     'mAP +2.00 [n/a (1 seed)] / NDS +1.25 [n/a (1 seed)] | mAP 54.2 -> 55.9 |',
     '| nsmae-centerpoint | 100 | mAP 12.50 / NDS 25.00 | mAP 10.00 / NDS 20.00 | '
     'mAP -2.50 [n/a (1 seed)] / NDS -5.00 [n/a (1 seed)] | mAP 60.8 -> 63.0, NDS 64.1 -> 65.5 |',
     'Fine-tuning seed 0 (init of the new layers and data order; one seed: no interval); '
     'pre-training once per chain (seed 0), 4 epochs on all 96 train frames'),
    (hand_results_seeds,  # paired by seed, intervals that exclude 0 in bold
     '| nsmae-centerpoint | 10 | mAP 1.00 ± 1.00 / NDS 11.00 ± 1.00 | '
     'mAP 3.00 ± 2.00 / NDS 13.00 ± 0.95 | mAP +2.00 [-0.48, +4.48] / '
     'NDS **+2.00 [+1.75, +2.25]** | mAP 54.2 -> 55.9 |',
     '| nsmae-centerpoint | 100 | mAP 22.00 ± 2.00 / NDS 30.00 ± 0.00 | '
     'mAP 19.00 ± 2.11 / NDS 30.00 ± 0.00 | mAP **-3.00 [-3.50, -2.50]** / '
     'NDS +0.00 [+0.00, +0.00] | mAP 60.8 -> 63.0, NDS 64.1 -> 65.5 |',
     'Fine-tuning seeds 0, 1, 2 (init of the new layers and data order; mean ± sample std over '
     'the 3 seeds; difference = pre-trained - scratch paired by seed, [95 % t interval over '
     'the seeds], **bold** when it excludes 0); pre-training once per chain (seed 0)'),
], ids=['one-seed', 'three-seeds'])
def test_table_rows_from_hand_written_results(results, row_10, row_100, caption):
    lines = render_table(results()).splitlines()
    assert lines[4] == row_10
    assert lines[5] == row_100
    assert lines[0].startswith(caption)


def test_pairing_is_by_seed_not_by_order():
    """Swapping the pre-trained values of two seeds changes the paired std, not the means."""
    results = hand_results_seeds()
    for run in results['runs']:
        if (run['fraction'], run['init']) == (10, 'pretrained') and run['seed'] in (0, 2):
            run['metrics']['mAP'] = 0.05 if run['seed'] == 0 else 0.01
    row = render_table(results).splitlines()[4]
    # diffs [5, 2, -1] points: mean 2, std 3, half-width 4.303 * 3 / sqrt(3) = 7.45
    assert 'mAP 3.00 ± 2.00 / NDS 13.00' in row and 'mAP +2.00 [-5.45, +9.45]' in row


def test_table_needs_the_pair_of_every_seed():
    results = hand_results_seeds()
    results['runs'] = [r for r in results['runs']
                       if (r['fraction'], r['init'], r['seed']) != (100, 'scratch', 1)]
    with pytest.raises(TransferTableError, match=r"100 % seed 1: no \['scratch'\]"):
        render_table(results)
    results = hand_results_seeds()
    results['runs'].append(copy.deepcopy(results['runs'][0]))
    with pytest.raises(TransferTableError, match='seed 2: two scratch runs'):
        render_table(results)


def test_history_record_of_three_seeds(tmp_path):
    history = tmp_path / 'history.jsonl'
    assert append_history(history, hand_results_seeds())
    record = json.loads(history.read_text())
    assert record['settings']['finetune_seeds'] == [0, 1, 2]
    cell = record['cells'][0]
    assert (cell['chain'], cell['fraction'], cell['seeds']) == ('nsmae-centerpoint', 10, [0, 1, 2])
    assert cell['scratch']['mAP'] == [0.00, 0.01, 0.02]
    assert cell['pretrained']['NDS'] == [0.12, 0.131, 0.139]
    diff = cell['stats']['NDS']['diff']
    assert diff['mean'] == pytest.approx(0.02) and diff['excludes_zero'] is True
    assert cell['stats']['mAP']['diff']['excludes_zero'] is False


def test_plot_draws_the_results(tmp_path):
    """Panel data read back from the drawn artists equals the hand-computed means and stds."""
    from tools.transfer.plot import plot_transfer
    path = tmp_path / 'images' / 'transfer.png'
    one_seed = hand_results()
    one_seed['chains']['nsmae-bevseg'] = copy.deepcopy(one_seed['chains']['nsmae-centerpoint'])
    one_seed['chains']['nsmae-bevseg']['spec'] = dict(CHAINS['nsmae-bevseg'].summary())
    one_seed['runs'] += [dict(chain='nsmae-bevseg', init=init, fraction=fraction, seed=0,
                              epochs=12, metrics=dict(mIoU=value), wall_s=1.0)
                         for init, fraction, value in (('scratch', 10, 0.25),
                                                       ('pretrained', 10, 0.375),
                                                       ('scratch', 100, 0.5),
                                                       ('pretrained', 100, 0.625))]
    # a chain in two files is drawn from the later one
    drawn = plot_transfer([one_seed, hand_results_seeds()], path)
    assert path.stat().st_size > 10000 and path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert list(drawn) == ['nsmae-centerpoint', 'nsmae-bevseg']
    center = drawn['nsmae-centerpoint']
    assert center['metric'] == 'mAP' and center['seeds'] == [0, 1, 2]
    import numpy as np
    np.testing.assert_allclose(center['scratch']['x'], [10, 100])
    np.testing.assert_allclose(center['scratch']['y'], [1.0, 22.0], atol=1e-9)
    np.testing.assert_allclose(center['scratch']['yerr'], [1.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(center['pretrained']['y'], [3.0, 19.0], atol=1e-9)
    np.testing.assert_allclose(center['pretrained']['yerr'], [2.0, math.sqrt(4.44)], atol=1e-9)
    seg = drawn['nsmae-bevseg']
    assert seg['metric'] == 'mIoU' and seg['seeds'] == [0]
    np.testing.assert_allclose(seg['scratch']['y'], [25.0, 50.0])
    np.testing.assert_allclose(seg['pretrained']['y'], [37.5, 62.5])
    np.testing.assert_allclose(seg['pretrained']['yerr'], [0.0, 0.0])  # one seed: no bars


def test_table_cli_writes_the_plot_of_several_seeds(tmp_path):
    from tools.benchmarks.transfer import main
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(hand_results_seeds()))
    readme, plot = tmp_path / 'README.md', tmp_path / 'transfer.png'
    readme.write_text(f'{START_MARKER}\n{END_MARKER}\n')
    assert main(['--table', str(path), '--readme', str(readme), '--plot', str(plot)]) == 0
    assert plot.is_file() and 'NDS **+2.00 [+1.75, +2.25]**' in readme.read_text()


def test_plan_lists_the_steps_with_their_iterations(tmp_path, capsys):
    """Dry run of the default world (10 scenes x 12 key frames: 8 train scenes = 96 frames,
    10 % by scene = 1 scene = 12 frames): CenterPoint batch 2, NS-MAE batch 1."""
    from tools.benchmarks.transfer import main
    from mmengine.config import Config
    from tools.transfer.experiment import format_plan, plan_experiment
    settings = ExperimentSettings(world_dir=tmp_path / 'world', work_dir=tmp_path / 'work',
                                  chains=('nsmae-centerpoint', ), fractions=(10, ), seeds=2)
    rows = plan_experiment(settings)
    sizes = {r['name']: (r['frames'], r['iterations']) for r in rows}
    chain = 'nsmae-centerpoint'
    assert sizes == {
        'world': (None, None), 'infos': (None, None),
        f'{chain}-pretrain-pt4e-seed0': (96, 4 * 96),
        f'{chain}-convert-pt4e-seed0': (None, None),
        # seed 0: the names single-seed runs had (their finished steps are reused)
        f'{chain}-10pct-scratch-ft3e-seed0': (12, 3 * 6),
        f'{chain}-10pct-pretrained-ft3e-pt4e-seed0': (12, 3 * 6),
        f'{chain}-10pct-scratch-ft3e-seed1': (12, 3 * 6),
        f'{chain}-10pct-pretrained-ft3e-pt4e-seed0-ftseed1': (12, 3 * 6)}
    assert not any(r['done'] for r in rows)
    # each fine-tuning config carries its seed; the pre-trained ones load the converted weights
    work = settings.work_dir / chain
    for tag, seed, load in (('10pct-scratch-ft3e-seed1', 1, None),
                            ('10pct-pretrained-ft3e-pt4e-seed0-ftseed1', 1,
                             work / 'converted-pt4e-seed0.pth'),
                            ('10pct-pretrained-ft3e-pt4e-seed0', 0,
                             work / 'converted-pt4e-seed0.pth')):
        cfg = Config.fromfile(str(work / tag / 'config.py'))
        assert cfg.randomness.seed == seed and cfg.load_from == (str(load) if load else None)
    assert Config.fromfile(str(work / 'pretrain-pt4e-seed0' / 'config.py')).randomness.seed == 0
    assert format_plan(rows).splitlines()[-1] == (  # 384 + 2 seeds x 2 inits x 18
        '8 of 8 steps to run; 456 training iterations (384 pre-training, 72 fine-tuning)')
    # 100 % = 8 train scenes = 96 frames
    assert main(['--world-dir', str(settings.world_dir), '--work-dir', str(settings.work_dir),
                 '--chains', chain, '--seeds', '1', '--fractions', '100', '--plan']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ('6 of 6 steps to run; 672 training iterations (384 pre-training, '
                       '288 fine-tuning)')
    assert any(line.startswith(f'{chain}-100pct-scratch-ft3e-seed0 ') and
               '144 iterations = 3 epochs x ceil(96 frames / batch 2)' in line for line in out)
    assert not (settings.world_dir).exists()  # nothing was run
