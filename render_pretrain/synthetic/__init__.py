"""Synthetic driving world written in the real nuScenes on-disk format.

Analytic geometry (ground plane and yaw-oriented boxes) is ray-cast exactly
for six cameras and a 32-beam LiDAR; tables, annotations and maps follow the
nuScenes v1.0 schema so that nuscenes-devkit and mmdet3d's converters read
the result unchanged.

Example:
    >>> from render_pretrain.synthetic import generate_world
    >>> root = generate_world('data/synthetic', num_scenes=3, keyframes_per_scene=4,
    ...                       image_size=(176, 64))
"""
from .sensor_rendering import cast_camera_depth, render_cameras, render_lidar, world_state_at
from .sensor_rig import CAMERA_CHANNELS, CAMERA_MOUNTS, LIDAR_CHANNEL
from .world import (WorldConfig, count_frames, generate_world, load_world_config, scene_layouts,
                    world_state_for_timestamp)

__all__ = ['generate_world', 'WorldConfig', 'count_frames', 'load_world_config', 'scene_layouts',
           'world_state_for_timestamp', 'world_state_at', 'render_cameras', 'render_lidar',
           'cast_camera_depth', 'CAMERA_CHANNELS', 'CAMERA_MOUNTS', 'LIDAR_CHANNEL']
