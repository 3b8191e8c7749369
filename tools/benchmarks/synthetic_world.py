"""Benchmark the synthetic world generator; prints one JSON line per measurement.

The target workload is 10 scenes x 40 key frames at 704x256 with nuScenes
rates (12 Hz cameras, 20 Hz LiDAR). By default a smaller world is timed and
the per-frame cost is extrapolated to the target (``extrapolated: true``);
``--full`` times the target itself.

    python tools/benchmarks/synthetic_world.py [--scenes 1 --keyframes 4] [--full]
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from render_pretrain.synthetic import WorldConfig, count_frames, generate_world  # noqa: E402


def measure(out_dir: Path, options: dict, threads: int, workers: int) -> dict:
    frames = count_frames(WorldConfig(**options))
    wall, cpu = time.perf_counter(), time.process_time()
    generate_world(out_dir, num_threads=threads, workers=workers, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = sum(p.stat().st_size for p in out_dir.rglob('*') if p.is_file())
    # cpu_s counts this process only (not worker processes)
    return dict(frames=frames, wall_s=round(wall, 2), cpu_s=round(cpu, 2),
                wall_per_frame_s=round(wall / frames, 4), bytes=size)


def main(argv=None):
    parser = argparse.ArgumentParser(description='synthetic world generation speed')
    parser.add_argument('--scenes', type=int, default=1)
    parser.add_argument('--keyframes', type=int, default=4)
    parser.add_argument('--resolution', default='704x256')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--workers', type=int, default=1)
    parser.add_argument('--full', action='store_true', help='time the 10 x 40 target itself')
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.resolution.split('x'))
    target = dict(version='v1.0-mini', num_scenes=10, keyframes_per_scene=40,
                  image_size=(width, height), camera_sweeps=5, lidar_sweeps=9,
                  lidar_azimuth_steps=1084, seed=0)
    options = dict(target)
    if not args.full:
        options.update(num_scenes=args.scenes, keyframes_per_scene=args.keyframes)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp), options, args.threads, args.workers)
    target_frames = count_frames(WorldConfig(**target))
    record = dict(benchmark='synthetic_world', resolution=f'{width}x{height}',
                  scenes=options['num_scenes'], keyframes=options['keyframes_per_scene'],
                  threads=args.threads, workers=args.workers, extrapolated=not args.full, **result,
                  target='10 scenes x 40 key frames, 12 Hz cameras, 20 Hz lidar',
                  target_frames=target_frames,
                  target_wall_s=round(result['wall_per_frame_s'] * target_frames, 1))
    print(json.dumps(record))


if __name__ == '__main__':
    main()
