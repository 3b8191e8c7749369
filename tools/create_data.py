"""Create mmdet3d 1.x info files for nuScenes (real or synthetic).

Example:
    python tools/create_data.py nuscenes --root-path data/nuscenes \
        --out-dir data/nuscenes --extra-tag nuscenes --version v1.0-mini \
        --max-cam-sweeps 4 --subsets 1,5,10,50,100 --subset-by scene --seed 0

Writes ``{tag}_infos_{train,val}.pkl`` (the schema of mmdet3d 1.4.0's own
converter plus ``cam_sweeps`` and ``map_seg_path``), BEV map labels under
``map_seg/`` and the label-efficient subsets ``{tag}_infos_train_{p}pct.pkl``
with their JSON manifests (see ``render_pretrain.nuscenes_infos``), and, as
mmdet3d's own ``create_data.py`` does, the ground-truth database
``{tag}_dbinfos_train.pkl`` + ``{tag}_gt_database/`` that stock LiDAR configs'
``ObjectSample`` reads, plus one ``{tag}_dbinfos_train_{p}pct.pkl`` per subset
with the objects of that subset's frames only (``--no-gt-database`` skips them).
"""
import argparse
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from render_pretrain.nuscenes_infos import NuScenesInfoError, create_nuscenes_infos  # noqa: E402
from render_pretrain.nuscenes_infos.subsets import parse_percents  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Create nuScenes info files')
    parser.add_argument('dataset', choices=['nuscenes'], help='dataset name')
    parser.add_argument('--root-path', type=Path, required=True,
                        help='nuScenes data root')
    parser.add_argument('--out-dir', type=Path, required=True,
                        help='output folder of the info files')
    parser.add_argument('--extra-tag', default='nuscenes', help='file-name prefix')
    parser.add_argument('--version', default='v1.0-trainval',
                        choices=['v1.0-trainval', 'v1.0-mini', 'v1.0-test'])
    parser.add_argument('--max-sweeps', type=int, default=10,
                        help='previous LiDAR sweeps per key frame (lidar_sweeps)')
    parser.add_argument('--max-cam-sweeps', type=int, default=4,
                        help='previous frames per camera (cam_sweeps)')
    parser.add_argument('--subsets', type=parse_percents, default=(1, 5, 10, 50, 100),
                        help='comma-separated training percentages ("" for none)')
    parser.add_argument('--subset-by', choices=['scene', 'frame'], default='scene')
    parser.add_argument('--seed', type=int, default=0, help='subset seed')
    parser.add_argument('--no-map', action='store_true',
                        help='do not rasterise BEV map labels (also for a data root without '
                        'maps/)')
    parser.add_argument('--skip-invalid-samples', action='store_true',
                        help='leave out (and count) key frames with NaN/Inf LiDAR points, '
                        'images that do not decode or a missing camera, instead of failing')
    parser.add_argument('--no-gt-database', action='store_true',
                        help='do not write the ground-truth database (ObjectSample)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    try:
        out = create_nuscenes_infos(
            args.root_path, args.out_dir, args.extra_tag, args.version,
            max_lidar_sweeps=args.max_sweeps, max_cam_sweeps=args.max_cam_sweeps,
            subsets=args.subsets, subset_by=args.subset_by, seed=args.seed,
            with_map=not args.no_map, skip_invalid=args.skip_invalid_samples)
    except NuScenesInfoError as err:
        logging.error('%s', err)
        sys.exit(1)
    for reason, count in out['skipped'].items():
        logging.warning('left out %d samples: %s', count, reason)
    logging.info('train: %s', out['train'])
    logging.info('val: %s', out['val'])
    for pct, path in out['subsets'].items():
        logging.info('%g%% subset: %s (manifest %s)', pct, path, out['manifests'][pct])
    if not args.no_gt_database:
        from tools.utils.gt_database import create_nuscenes_gt_database
        db_infos = create_nuscenes_gt_database(
            args.root_path, out['train'], args.extra_tag,
            db_info_path=args.out_dir / f'{args.extra_tag}_dbinfos_train.pkl')
        logging.info('ground-truth database: %s', db_infos)
        from tools.utils.gt_database import create_subset_gt_databases
        for pct, path in create_subset_gt_databases(
                db_infos, out['train'], out['manifests'], args.out_dir,
                args.extra_tag).items():
            logging.info('%g%% subset ground-truth database: %s', pct, path)


if __name__ == '__main__':
    main()
