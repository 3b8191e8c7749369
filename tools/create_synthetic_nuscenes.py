"""Generate a synthetic driving world in the nuScenes on-disk format.

Example:
    python tools/create_synthetic_nuscenes.py --out-dir data/synthetic-nuscenes \
        --version v1.0-mini --scenes 10 --keyframes 40 --resolution 704x256

The result loads with ``NuScenes(version, dataroot)`` and mmdet3d's
``tools/create_data.py nuscenes`` converter. Defaults follow nuScenes rates:
12 Hz cameras (5 sweeps between key frames), 20 Hz LiDAR (9 sweeps).
"""
import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from render_pretrain.progress import ProgressBar  # noqa: E402
from render_pretrain.synthetic import WorldConfig, count_frames, generate_world  # noqa: E402


def parse_resolution(text: str):
    """'704x256' -> (704, 256)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f'--resolution must look like 704x256, got {text!r}') from err
    return width, height


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', required=True, type=Path, help='dataroot to write')
    parser.add_argument('--version', default='v1.0-mini', choices=['v1.0-mini', 'v1.0-trainval'])
    parser.add_argument('--scenes', type=int, default=10, help='number of scenes')
    parser.add_argument('--keyframes', type=int, default=40, help='key frames (2 Hz) per scene')
    parser.add_argument('--resolution', type=parse_resolution, default=(704, 256),
                        help='camera WxH (e.g. 704x256, 1600x900)')
    parser.add_argument('--camera-sweeps', type=int, default=5,
                        help='camera frames between key frames (5 = 12 Hz)')
    parser.add_argument('--lidar-sweeps', type=int, default=9,
                        help='LiDAR sweeps between key frames (9 = 20 Hz)')
    parser.add_argument('--lidar-azimuth-steps', type=int, default=1084,
                        help='LiDAR columns per revolution')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jpeg-quality', type=int, default=90)
    parser.add_argument('--threads', type=int, default=1, help='torch threads while rendering')
    parser.add_argument('--workers', type=int, default=1,
                        help='scenes rendered in parallel processes (same bytes as 1)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    options = dict(version=args.version, num_scenes=args.scenes,
                   keyframes_per_scene=args.keyframes, image_size=args.resolution,
                   camera_sweeps=args.camera_sweeps, lidar_sweeps=args.lidar_sweeps,
                   lidar_azimuth_steps=args.lidar_azimuth_steps, seed=args.seed,
                   jpeg_quality=args.jpeg_quality)
    config = WorldConfig(**options)
    config.validate()
    with ProgressBar(count_frames(config), 'synthetic world', 'frame') as bar:
        root = generate_world(args.out_dir, progress=bar.update, num_threads=args.threads,
                              workers=args.workers, **options)
    logging.getLogger(__name__).info('synthetic world written to %s', root)


if __name__ == '__main__':
    main()
