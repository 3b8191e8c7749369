"""Draw one sample of an mmdet3d nuScenes info file: images, LiDAR, 3D boxes.

Example:
    python tools/visualize_sample.py data/nuscenes/nuscenes_infos_val.pkl \
        --data-root data/nuscenes --index 0 --out sample.png
    # all files in one folder (data_prefix '' everywhere):
    python tools/visualize_sample.py frame.pkl --data-root frame/ --flat --out x.png
"""
import argparse
import logging
from pathlib import Path

from render_pretrain.visualization import load_sample_overview, save_overview_png


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('info_pkl', type=Path, help='mmdet3d 1.x info file')
    parser.add_argument('--data-root', type=Path, required=True)
    parser.add_argument('--index', type=int, default=0, help='data_list index')
    parser.add_argument('--out', type=Path, required=True, help='output PNG')
    parser.add_argument('--flat', action='store_true',
                        help='images and LiDAR file lie directly in --data-root')
    parser.add_argument('--panel-width', type=int, default=400,
                        help='width of each camera panel in pixels')
    parser.add_argument('--min-lidar-points', type=int, default=1,
                        help='draw boxes with at least this many LiDAR points (0: all)')
    parser.add_argument('--colours', type=int, default=0,
                        help='quantise the PNG to this many colours (0: RGB)')
    return parser.parse_args()


def main():
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    image = load_sample_overview(args.info_pkl, args.data_root, args.index,
                                 args.flat, args.panel_width, args.min_lidar_points)
    path = save_overview_png(image, args.out, args.colours)
    logging.info('wrote %s (%dx%d, %d bytes)', path, image.shape[1], image.shape[0],
                 path.stat().st_size)


if __name__ == '__main__':
    main()
