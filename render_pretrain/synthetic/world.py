"""Generate a synthetic driving world in the nuScenes on-disk format.

Layout written under ``out_dir`` (the dataroot)::

    <version>/*.json            13 nuScenes tables (v1.0 schema)
    samples/CAM_*/*.jpg         key-frame images (2 Hz)
    sweeps/CAM_*/*.jpg          intermediate camera frames
    samples/LIDAR_TOP/*.pcd.bin key-frame sweeps, float32 x 5 (x, y, z, intensity, ring)
    sweeps/LIDAR_TOP/*.pcd.bin  intermediate LiDAR sweeps
    maps/<token>.png            semantic prior mask per location
    maps/expansion/<location>.json  map expansion per location
    synthetic_world.json        the generation parameters

All sensors of a scene are ray-cast against the same analytic geometry.
Key frames are at 2 Hz; key-frame camera and LiDAR timestamps coincide, and
``camera_sweeps`` / ``lidar_sweeps`` extra frames are spread evenly inside
each key-frame interval (5 and 9 give nuScenes' 12 Hz and 20 Hz).
Simplifications: one log per scene, no radar, no ego motion inside a LiDAR
sweep, all cameras of a frame share one timestamp.
"""
import io
import json
import logging
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from PIL import Image

from .map_layers import write_location_maps
from .nuscenes_tables import (LOCATION_VEHICLE, TokenFactory, link_chain, scene_names,
                              static_tables, write_tables)
from .object_catalog import visibility_token
from .scene_layout import CROSS_LENGTH, ROAD_MARGIN, SceneLayout, build_scene_layout
from .sensor_rendering import (WorldState, count_points_in_boxes, render_cameras, render_lidar,
                               world_state_at)
from .sensor_rig import (CAMERA_MOUNTS, LIDAR_CHANNEL, calibration_records, camera_intrinsics,
                         yaw_quaternion)

logger = logging.getLogger(__name__)

LOCATIONS = ('boston-seaport', 'singapore-onenorth', 'singapore-queenstown',
             'singapore-hollandvillage')
KEYFRAME_INTERVAL_US = 500_000
ANNOTATION_RANGE = 70.0
META_FILE = 'synthetic_world.json'


@dataclass
class WorldConfig:
    """Generation parameters (saved to ``synthetic_world.json``).

    Attributes:
        version (str): 'v1.0-mini' or 'v1.0-trainval'.
        num_scenes (int): number of scenes (<= 10 for v1.0-mini).
        keyframes_per_scene (int): samples per scene (2 Hz).
        image_size (tuple): camera (W, H) in pixels.
        camera_sweeps (int): camera frames between two key frames (5 = 12 Hz).
        lidar_sweeps (int): LiDAR sweeps between two key frames (9 = 20 Hz).
        lidar_azimuth_steps (int): LiDAR azimuth columns per revolution.
        seed (int): master seed.
        jpeg_quality (int): JPEG quality (1..95).
    """

    version: str = 'v1.0-mini'
    num_scenes: int = 10
    keyframes_per_scene: int = 40
    image_size: Tuple[int, int] = (704, 256)
    camera_sweeps: int = 5
    lidar_sweeps: int = 9
    lidar_azimuth_steps: int = 1084
    seed: int = 0
    jpeg_quality: int = 90

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        checks = [
            ('keyframes_per_scene', self.keyframes_per_scene >= 1, '>= 1'),
            ('camera_sweeps', 0 <= self.camera_sweeps <= 20, 'in [0, 20]'),
            ('lidar_sweeps', 0 <= self.lidar_sweeps <= 40, 'in [0, 40]'),
            ('lidar_azimuth_steps', self.lidar_azimuth_steps >= 8, '>= 8'),
            ('jpeg_quality', 1 <= self.jpeg_quality <= 95, 'in [1, 95]'),
            ('image_size', len(self.image_size) == 2 and min(self.image_size) >= 8,
             '(W, H) with both >= 8'),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f'WorldConfig.{name} must be {expected}, '
                                 f'got {getattr(self, name)!r}')
        scene_names(self.version, self.num_scenes)

    @property
    def duration(self) -> float:
        """Scene length in seconds."""
        return (self.keyframes_per_scene - 1) * KEYFRAME_INTERVAL_US / 1e6


def _scene_radius(duration: float) -> float:
    travel = 8.0 * duration
    return float(np.hypot(travel / 2 + ROAD_MARGIN + 8.0, CROSS_LENGTH + 8.0) + 30.0)


def scene_layouts(config: WorldConfig) -> List[Tuple[str, str, SceneLayout]]:
    """Rebuild every scene of a configuration (cheap; no rendering).

    Returns:
        list: (scene name, location, SceneLayout) per scene, in order.
    """
    names = scene_names(config.version, config.num_scenes)
    radius = _scene_radius(config.duration)
    slot = 2 * radius + 50.0
    out = []
    for i, name in enumerate(names):
        location = LOCATIONS[i % len(LOCATIONS)]
        column = i // len(LOCATIONS)
        rng = np.random.default_rng([config.seed, i])
        origin = (50.0 + radius + column * slot, 50.0 + radius)
        drive_side = -1 if location.startswith('boston') else 1
        layout = build_scene_layout(rng, config.duration, drive_side, origin,
                                    float(rng.uniform(0, 2 * np.pi)))
        out.append((name, location, layout))
    return out


def location_canvas(config: WorldConfig) -> Tuple[float, float]:
    """(width, height) in metres of every location's map canvas."""
    radius = _scene_radius(config.duration)
    columns = -(-config.num_scenes // len(LOCATIONS))
    return (100.0 + columns * (2 * radius + 50.0), 100.0 + 2 * radius)


def frame_schedule(config: WorldConfig) -> Dict[str, List[Tuple[float, bool]]]:
    """Capture times of one scene, in seconds from its start.

    Returns:
        dict: 'camera' and 'lidar' -> time-ordered list of (time, is_key_frame).
    """
    out = {}
    for kind, n_sweeps in (('camera', config.camera_sweeps), ('lidar', config.lidar_sweeps)):
        times = []
        for k in range(config.keyframes_per_scene):
            times.append((k * 0.5, True))
            if k + 1 < config.keyframes_per_scene:
                times += [((k + j / (n_sweeps + 1)) * 0.5, False) for j in range(1, n_sweeps + 1)]
        out[kind] = times
    return out


def scene_start_us(config: WorldConfig, index: int) -> int:
    """Timestamp (microseconds) of scene ``index``'s first key frame."""
    return 1533110400000000 + index * 3_600_000_000 + config.seed % 1000 * 1_000_000


def _timestamp(scene_start_us: int, t: float) -> int:
    return scene_start_us + int(round(t * 1e6))


def _encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format='JPEG', quality=quality, optimize=False,
                              progressive=False, subsampling=2)
    return buf.getvalue()


def _global_pose(layout: SceneLayout, pose: np.ndarray) -> Tuple[list, list]:
    """Global (translation [3], rotation quaternion [4]) of a scene-frame (x, y, yaw)."""
    xy = layout.scene_to_global(pose[:2])
    return [float(xy[0]), float(xy[1]), 0.0], yaw_quaternion(pose[2] + layout.origin_yaw).tolist()


class _SceneWriter:
    """Renders one scene and appends its records to the tables."""

    def __init__(self, config: WorldConfig, root: Path, tokens: TokenFactory, tables: dict,
                 calib: dict, sensor_tokens: dict, category_tokens: dict, attribute_tokens: dict):
        self.config, self.root, self.tokens, self.tables = config, root, tokens, tables
        self.calib, self.sensor_tokens = calib, sensor_tokens
        self.category_tokens, self.attribute_tokens = category_tokens, attribute_tokens

    def write(self, index: int, name: str, location: str, layout: SceneLayout,
              log_token: str, progress: Optional[Callable[[int], None]]) -> None:
        cfg, tok = self.config, self.tokens
        scene_token = tok('scene', index)
        vehicle, tz = LOCATION_VEHICLE[location]
        logfile = f'{vehicle}-2018-08-{1 + index % 28:02d}-{10 + index % 9}-{index % 60:02d}-00{tz}'
        start_us = scene_start_us(cfg, index)
        self.tables['log'].append(dict(token=log_token, logfile=logfile, vehicle=vehicle,
                                       date_captured=f'2018-08-{1 + index % 28:02d}',
                                       location=location))
        cs_tokens = {}
        for ch, rec in self.calib.items():
            cs_tokens[ch] = tok('calibrated_sensor', index, ch)
            intr = camera_intrinsics(rec['mount'], cfg.image_size).tolist() \
                if rec['modality'] == 'camera' else []
            self.tables['calibrated_sensor'].append(dict(
                token=cs_tokens[ch], sensor_token=self.sensor_tokens[ch],
                translation=rec['translation'], rotation=rec['rotation'], camera_intrinsic=intr))
        samples = [dict(token=tok('sample', index, k), scene_token=scene_token,
                        timestamp=_timestamp(start_us, k * 0.5))
                   for k in range(cfg.keyframes_per_scene)]
        link_chain(samples)
        self.tables['sample'] += samples
        self.tables['scene'].append(dict(
            token=scene_token, log_token=log_token, nbr_samples=len(samples), name=name,
            first_sample_token=samples[0]['token'], last_sample_token=samples[-1]['token'],
            description=f'Synthetic {location} street, ego at {layout.ego_speed:.1f} m/s, '
                        f'intersection, car park, construction zone'))

        schedule = frame_schedule(cfg)
        cam_times = {t: key for t, key in schedule['camera']}
        lidar_times = {t: key for t, key in schedule['lidar']}
        sd_records = {ch: [] for ch in self.calib}
        agent_ann = {}
        for t in sorted(set(cam_times) | set(lidar_times)):
            state = world_state_at(layout, t)
            ts = _timestamp(start_us, t)
            key = cam_times.get(t, False) or lidar_times.get(t, False)
            k = int(round(t / 0.5))
            sample_token = samples[min(k, len(samples) - 1)]['token']
            cam_visible = None
            if t in cam_times:
                cam_visible = self._write_cameras(state, logfile, ts, key, sample_token, cs_tokens,
                                                  sd_records, layout, index)
            if t in lidar_times:
                lidar = render_lidar(state, cfg.lidar_azimuth_steps)
                folder = 'samples' if key else 'sweeps'
                rel = f'{folder}/{LIDAR_CHANNEL}/{logfile}__{LIDAR_CHANNEL}__{ts}.pcd.bin'
                self._save(rel, lidar['points'].astype(np.float32).tobytes())
                sd_records[LIDAR_CHANNEL].append(self._sample_data(
                    LIDAR_CHANNEL, index, ts, key, sample_token, cs_tokens, rel, 'pcd', 0, 0,
                    layout, state))
                if key:
                    self._annotate(state, samples[k]['token'], lidar['scene_xyz'], cam_visible,
                                   agent_ann, layout)
            if progress is not None:
                progress(1)
        for records in sd_records.values():
            link_chain(records)
            self.tables['sample_data'] += records
        self._write_instances(index, agent_ann, layout)

    def _save(self, rel: str, payload: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)

    def _sample_data(self, channel, index, ts, key, sample_token, cs_tokens, rel, fileformat,
                     width, height, layout, state):
        tok = self.tokens
        sd_token = tok('sample_data', index, channel, ts)
        pose_token = tok('ego_pose', index, channel, ts)
        translation, rotation = _global_pose(layout, state.ego)
        self.tables['ego_pose'].append(dict(token=pose_token, timestamp=ts,
                                            translation=translation, rotation=rotation))
        return dict(token=sd_token, sample_token=sample_token, ego_pose_token=pose_token,
                    calibrated_sensor_token=cs_tokens[channel], timestamp=ts,
                    fileformat=fileformat, is_key_frame=bool(key), height=int(height),
                    width=int(width), filename=rel)

    def _write_cameras(self, state: WorldState, logfile, ts, key, sample_token, cs_tokens,
                       sd_records, layout, index) -> Optional[np.ndarray]:
        """Render the six cameras; on key frames return (visible, covered) pixel counts per box."""
        cfg = self.config
        width, height = cfg.image_size
        out = render_cameras(state, CAMERA_MOUNTS, cfg.image_size, with_coverage=bool(key))
        folder = 'samples' if key else 'sweeps'
        for c, mount in enumerate(CAMERA_MOUNTS):
            rel = f'{folder}/{mount.channel}/{logfile}__{mount.channel}__{ts}.jpg'
            self._save(rel, _encode_jpeg(out['rgb'][c], cfg.jpeg_quality))
            sd_records[mount.channel].append(self._sample_data(
                mount.channel, index, ts, key, sample_token, cs_tokens, rel, 'jpg', width, height,
                layout, state))
        prim = out['prim'].reshape(-1)
        visible = np.bincount(prim[prim >= 0], minlength=len(state.boxes))
        covered = out['coverage'].sum(0)
        return np.stack([visible, covered]) if key else None

    def _annotate(self, state, sample_token, scene_xyz, cam_visible, agent_ann, layout) -> None:
        boxes = layout.agent_boxes(state.time)
        dist = np.hypot(boxes[:, 0] - state.ego[0], boxes[:, 1] - state.ego[1])
        chosen = np.nonzero(dist <= ANNOTATION_RANGE)[0]
        counts = count_points_in_boxes(scene_xyz, boxes[chosen])
        for a, n_pts in zip(chosen, counts):
            a = int(a)
            frac = 0.0
            if cam_visible is not None:
                vis, cov = cam_visible[:, state.num_static + a]
                frac = float(vis) / float(cov) if cov > 0 else 0.0
            xy = layout.scene_to_global(boxes[a, :2])
            w, l, h = boxes[a, 3:6]
            attr = layout.agents.attribute[a]
            agent_ann.setdefault(a, []).append(dict(
                token=self.tokens('sample_annotation', sample_token, a), sample_token=sample_token,
                instance_token='', visibility_token=visibility_token(frac),
                attribute_tokens=[self.attribute_tokens[attr]] if attr else [],
                translation=[float(xy[0]), float(xy[1]), float(boxes[a, 2])],
                size=[float(w), float(l), float(h)],
                rotation=yaw_quaternion(boxes[a, 6] + layout.origin_yaw).tolist(),
                num_lidar_pts=int(n_pts), num_radar_pts=0))

    def _write_instances(self, index, agent_ann, layout) -> None:
        for a in sorted(agent_ann):
            anns = agent_ann[a]
            inst_token = self.tokens('instance', index, a)
            for ann in anns:
                ann['instance_token'] = inst_token
            link_chain(anns)
            self.tables['sample_annotation'] += anns
            self.tables['instance'].append(dict(
                token=inst_token, category_token=self.category_tokens[layout.agents.category[a]],
                nbr_annotations=len(anns), first_annotation_token=anns[0]['token'],
                last_annotation_token=anns[-1]['token']))


DYNAMIC_TABLES = ('instance', 'calibrated_sensor', 'ego_pose', 'log', 'scene', 'sample',
                  'sample_data', 'sample_annotation', 'map')


def _static_tables(config: WorldConfig) -> dict:
    calib = calibration_records()
    channels = list(calib)
    return static_tables(TokenFactory(config.seed), channels,
                         [calib[ch]['modality'] for ch in channels])


def _extend_tables(tables: dict, fragment: dict) -> None:
    for name, records in fragment.items():
        tables[name] += records


def _render_scene_job(job, progress: Optional[Callable[[int], None]] = None) -> dict:
    """Render scene ``index`` of a configuration and return its table records.

    Runs in the calling process or in a worker; the records only depend on
    the configuration, so the merged tables are identical either way.
    """
    config, root, index, num_threads = job
    name, location, layout = scene_layouts(config)[index]
    tokens = TokenFactory(config.seed)
    static = _static_tables(config)
    fragment = {name_: [] for name_ in DYNAMIC_TABLES}
    writer = _SceneWriter(config, Path(root), tokens, fragment, calibration_records(),
                          {s['channel']: s['token'] for s in static['sensor']},
                          {c['name']: c['token'] for c in static['category']},
                          {a['name']: a['token'] for a in static['attribute']})
    previous_threads = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        logger.debug('synthetic world: rendering scene %s (%d/%d)', name, index + 1,
                     config.num_scenes)
        with torch.no_grad():
            writer.write(index, name, location, layout, tokens('log', index), progress)
    finally:
        torch.set_num_threads(previous_threads)
    return fragment


def _render_scene_job_counted(job_and_queue) -> dict:
    """``_render_scene_job`` in a worker, putting 1 on the queue per frame (if any)."""
    job, frames = job_and_queue
    return _render_scene_job(job, frames.put if frames is not None else None)


def _drain(frames, progress: Callable[[int], None], timeout: Optional[float]) -> None:
    """Pass the frame counts queued by the workers to ``progress``.

    Waits up to ``timeout`` seconds for the first count (None: takes only
    what is queued), then takes what else is queued without waiting.
    """
    import queue
    done = 0
    try:
        if timeout is not None:
            done += frames.get(timeout=timeout)
        while True:
            done += frames.get_nowait()
    except queue.Empty:
        pass
    if done:
        progress(done)


def count_frames(config: WorldConfig) -> int:
    """Number of distinct capture instants over the whole world (progress total)."""
    schedule = frame_schedule(config)
    per_scene = len({t for t, _ in schedule['camera']} | {t for t, _ in schedule['lidar']})
    return per_scene * config.num_scenes


def generate_world(out_dir, version: str = 'v1.0-mini', num_scenes: int = 10,
                   keyframes_per_scene: int = 40, image_size: Tuple[int, int] = (704, 256),
                   seed: int = 0, camera_sweeps: int = 5, lidar_sweeps: int = 9,
                   lidar_azimuth_steps: int = 1084, jpeg_quality: int = 90,
                   progress: Optional[Callable[[int], None]] = None,
                   num_threads: Optional[int] = 1, workers: int = 1) -> Path:
    """Generate a synthetic nuScenes-format world.

    Args:
        out_dir (str | Path): dataroot to create (may exist; files are
            overwritten).
        version (str): 'v1.0-mini' (<= 10 scenes, mini_train / mini_val
            names) or 'v1.0-trainval' (train / val names).
        num_scenes (int): number of scenes.
        keyframes_per_scene (int): samples per scene (2 Hz).
        image_size (tuple): camera (W, H) in pixels; intrinsics scale with W.
        seed (int): master seed; the same seed gives byte-identical files.
        camera_sweeps (int): camera frames between key frames (5 = 12 Hz).
        lidar_sweeps (int): LiDAR sweeps between key frames (9 = 20 Hz).
        lidar_azimuth_steps (int): LiDAR columns per revolution.
        jpeg_quality (int): JPEG quality.
        progress (callable, optional): called with the number of capture
            instants done (see :func:`count_frames` for the total), after
            every frame (with ``workers`` > 1: as the workers' frames are
            counted, at least every 0.2 s).
        num_threads (int, optional): torch intra-op threads while rendering
            (restored afterwards); None keeps the current setting. The
            default 1 suits shared CPUs: the ray caster runs many
            medium-sized ops, and multi-threaded ops spin-wait for their
            threads, which costs CPU time when other processes hold the
            cores; ``workers`` parallelises over scenes instead.
        workers (int): scenes rendered in parallel processes (spawned);
            the output is byte-identical to ``workers=1``.

    Returns:
        Path: the dataroot.
    """
    config = WorldConfig(version=version, num_scenes=int(num_scenes),
                         keyframes_per_scene=int(keyframes_per_scene),
                         image_size=(int(image_size[0]), int(image_size[1])),
                         camera_sweeps=int(camera_sweeps), lidar_sweeps=int(lidar_sweeps),
                         lidar_azimuth_steps=int(lidar_azimuth_steps), seed=int(seed),
                         jpeg_quality=int(jpeg_quality))
    config.validate()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    tokens = TokenFactory(config.seed)
    tables = _static_tables(config)
    for name in DYNAMIC_TABLES:
        tables[name] = []
    layouts = scene_layouts(config)
    by_location: Dict[str, list] = {}
    for index, (_, location, layout) in enumerate(layouts):
        by_location.setdefault(location, []).append((tokens('log', index), layout))
    jobs = [(config, str(root), index, num_threads) for index in range(len(layouts))]
    if workers > 1 and len(jobs) > 1:
        context = multiprocessing.get_context('spawn')
        with context.Manager() as manager, context.Pool(min(workers, len(jobs))) as pool:
            # the workers count their frames into a queue; this process passes
            # them on, so the progress is per frame with workers too
            frames = manager.Queue() if progress is not None else None
            pending = pool.map_async(_render_scene_job_counted, [(job, frames) for job in jobs])
            while frames is not None and not pending.ready():
                _drain(frames, progress, timeout=0.2)
            fragments = pending.get()  # in scene order; raises a worker's error
            if frames is not None:
                _drain(frames, progress, timeout=None)
        for fragment in fragments:
            _extend_tables(tables, fragment)
    else:
        for job in jobs:
            _extend_tables(tables, _render_scene_job(job, progress))
    canvas = location_canvas(config)
    for location in LOCATIONS:
        if location not in by_location:
            continue
        map_token = tokens('map', location)
        rel = write_location_maps(root, location, map_token,
                                  [lay for _, lay in by_location[location]], canvas, tokens)
        tables['map'].append(dict(token=map_token, category='semantic_prior', filename=rel,
                                  log_tokens=[log for log, _ in by_location[location]]))
    write_tables(root / config.version, tables)
    meta = asdict(config)
    meta['image_size'] = list(config.image_size)
    (root / META_FILE).write_text(json.dumps(meta, sort_keys=True, indent=1))
    return root


def load_world_config(dataroot) -> WorldConfig:
    """Read the generation parameters saved next to a synthetic world."""
    path = Path(dataroot) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f'{path} not found: not a synthetic world generated by '
                                f'render_pretrain.synthetic.generate_world')
    meta = json.loads(path.read_text())
    try:
        meta['image_size'] = tuple(meta['image_size'])
        config = WorldConfig(**meta)
    except (KeyError, TypeError) as err:
        raise ValueError(f'{path}: malformed synthetic world parameters ({err})') from err
    config.validate()
    return config


def world_state_for_timestamp(dataroot, scene_name: str, timestamp_us: int) -> WorldState:
    """Rebuild the world of a generated scene at a sample_data timestamp.

    Args:
        dataroot (str | Path): synthetic dataroot.
        scene_name (str): scene name (e.g. 'scene-0061').
        timestamp_us (int): timestamp in microseconds, as in the tables.

    Returns:
        WorldState: scene-frame geometry and ego pose at that time; pair it
        with :func:`render_pretrain.synthetic.sensor_rendering.cast_camera_depth`.
    """
    config = load_world_config(dataroot)
    for index, (name, _, layout) in enumerate(scene_layouts(config)):
        if name == scene_name:
            start_us = scene_start_us(config, index)
            return world_state_at(layout, (int(timestamp_us) - start_us) / 1e6)
    raise KeyError(f'scene {scene_name!r} is not part of the synthetic world at {dataroot}')
