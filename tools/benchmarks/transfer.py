"""Label-efficient transfer experiment (issue #7): scratch vs pre-trained fine-tuning.

Runs, on a synthetic world, NS-MAE (LiDAR) pre-training -> conversion ->
CenterPoint fine-tuning and MIM4D pre-training -> conversion -> BEVDet
fine-tuning, each fine-tuning from scratch and from the converted weights
with the same seed and schedule, on each label fraction, evaluated with
mmdet3d's NuScenesMetric. Pre-training runs once per chain; every
fine-tuning cell runs once per seed (``--seeds``, default 3), scratch and
pre-trained paired by seed. Prints one progress line per step and one JSON
line per fine-tuning run, writes all results to ``--out``. Re-running skips
finished steps (``--force`` re-runs them); ``--plan`` only prints the steps
and their iterations. The orchestration lives in
``tools/transfer/experiment.py`` (sizing arithmetic there).

Examples:
    # the full run (about an hour on 2 cores, see the sizing in the module)
    python tools/benchmarks/transfer.py --world-dir data/transfer-world \
        --work-dir work_dirs/transfer --out work_dirs/transfer/results.json
    # what that would run (steps, iterations), without running it
    python tools/benchmarks/transfer.py --world-dir data/transfer-world \
        --work-dir work_dirs/transfer --plan
    # the README table from the results (rewrite README.md's block, keep the run in the
    # history, draw the plot)
    python tools/benchmarks/transfer.py --table work_dirs/transfer/results.json --readme README.md \
        --history docs/results/transfer_history.jsonl --plot docs/images/transfer.png
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tools.transfer.chains import CHAINS  # noqa: E402
from tools.transfer.experiment import (ExperimentSettings, check_results,  # noqa: E402
                                       format_plan, parse_fractions, plan_experiment,
                                       run_experiment, save_results)
from tools.transfer.plot import plot_transfer  # noqa: E402
from tools.transfer.steps import StepError  # noqa: E402
from tools.transfer.table import (TransferTableError, append_history,  # noqa: E402
                                  render_table, replace_readme_block)

DEFAULTS = ExperimentSettings(world_dir=Path('.'), work_dir=Path('.'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--world-dir', type=Path, default=Path('data/transfer-world'),
                        help='synthetic world data root (generated when absent)')
    parser.add_argument('--info-dir', type=Path,
                        help='folder of the info files (default: --world-dir)')
    parser.add_argument('--work-dir', type=Path, default=Path('work_dirs/transfer'))
    parser.add_argument('--scenes', type=int, default=DEFAULTS.scenes,
                        help='scenes of a new world (v1.0-mini: at most 10, 20 %% val)')
    parser.add_argument('--keyframes', type=int, default=DEFAULTS.keyframes,
                        help='key frames per scene of a new world')
    parser.add_argument('--resolution', default=DEFAULTS.resolution, help='camera WxH')
    parser.add_argument('--pretrain-epochs', type=int, default=DEFAULTS.pretrain_epochs)
    parser.add_argument('--finetune-epochs', type=int, default=DEFAULTS.finetune_epochs)
    parser.add_argument('--fractions', nargs='+', default=['10', '100'],
                        help='label percentages, e.g. 10 100')
    parser.add_argument('--subset-by', choices=['scene', 'frame'], default=DEFAULTS.subset_by)
    parser.add_argument('--chains', nargs='+', default=list(CHAINS), choices=list(CHAINS))
    parser.add_argument('--seed', type=int, default=DEFAULTS.seed,
                        help='seed of the world, the label subsets and the pre-training; the '
                        'first fine-tuning seed')
    parser.add_argument('--seeds', type=int, default=DEFAULTS.seeds,
                        help='fine-tuning seeds per cell: --seed, --seed + 1, ... (default: '
                        f'{DEFAULTS.seeds}); scratch and pre-trained paired by seed')
    parser.add_argument('--plan', action='store_true',
                        help='dry run: print the steps a run would execute (or skip) with '
                        'their training iterations, run nothing')
    parser.add_argument('--force', action='store_true', help='re-run finished steps')
    parser.add_argument('--jobs', type=int, default=DEFAULTS.jobs,
                        help='steps run at the same time (default: 2, one per core)')
    parser.add_argument('--threads', type=int, default=DEFAULTS.threads,
                        help='intra-op threads per step (default: 1)')
    parser.add_argument('--out', type=Path, help='results JSON (default <work-dir>/results.json)')
    parser.add_argument('--table', type=Path, nargs='+', metavar='RESULTS_JSON',
                        help='only render the README table from these results files (one '
                        'block per run, each with its own setup line and commit)')
    parser.add_argument('--readme', type=Path,
                        help='with --table: rewrite the transfer-table block of this README')
    parser.add_argument('--history', type=Path,
                        help='with --table: append the runs to this JSON-lines history '
                        '(once per run; e.g. docs/results/transfer_history.jsonl)')
    parser.add_argument('--plot', type=Path,
                        help='with --table: draw scratch vs pre-trained per chain over the '
                        'label fractions (e.g. docs/images/transfer.png)')
    return parser.parse_args(argv)


def table_mode(args) -> int:
    runs, blocks = [], []
    for path in args.table:
        try:
            results = json.loads(path.read_text())
            check_results(results)
            blocks.append(render_table(results))
        except (OSError, json.JSONDecodeError, StepError, TransferTableError) as err:
            sys.stderr.write(f'error: {path}: {err}\n')
            return 1
        runs.append(results)
    block = '\n'.join(blocks)
    try:
        if args.readme:
            replace_readme_block(args.readme, block)
        for results in runs:
            if args.history and append_history(args.history, results):
                sys.stderr.write(f'added the run of {results.get("created")} to {args.history}\n')
        if args.plot:
            plot_transfer(runs, args.plot)
            sys.stderr.write(f'wrote {args.plot}\n')
    except (TransferTableError, ValueError) as err:
        sys.stderr.write(f'error: {err}\n')
        return 1
    sys.stdout.write(block)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        return table_mode(args)
    settings = ExperimentSettings(
        world_dir=args.world_dir, work_dir=args.work_dir, info_dir=args.info_dir,
        scenes=args.scenes, keyframes=args.keyframes, resolution=args.resolution,
        pretrain_epochs=args.pretrain_epochs, finetune_epochs=args.finetune_epochs,
        fractions=parse_fractions(args.fractions), subset_by=args.subset_by,
        chains=tuple(args.chains), seed=args.seed, seeds=args.seeds, force=args.force,
        jobs=args.jobs, threads=args.threads)
    if args.plan:
        try:
            sys.stdout.write(format_plan(plan_experiment(settings)))
        except StepError as err:
            sys.stderr.write(f'error: {err}\n')
            return 1
        return 0
    out = args.out or settings.work_dir / 'results.json'

    def emit(record):
        print(json.dumps(record), flush=True)

    try:
        results = run_experiment(settings, progress=lambda line: print(line, flush=True),
                                 emit=emit)
        save_results(results, out)
        check_results(results)
    except StepError as err:
        sys.stderr.write(f'error: {err}\n')
        return 1
    print(f'results: {out} ({results["steps_wall_s"] / 60:.1f} min of steps)', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
