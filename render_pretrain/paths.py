"""Where the optional shared resources live (real nuScenes frame, manifests).

The project never ships those files. Code and tests find them through the
``RENDER_PRETRAIN_SHARED`` environment variable, which defaults to
``../shared`` next to the repository checkout.
"""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """Return the shared folder (may not exist on a user's machine).

    Returns:
        Path: ``$RENDER_PRETRAIN_SHARED`` if set, else ``<repo>/../shared``.
    """
    env = os.environ.get('RENDER_PRETRAIN_SHARED')
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / 'shared').resolve()


def real_frame_dir() -> Path:
    """Folder holding the real nuScenes key frame (images, LiDAR, info pkl)."""
    return shared_dir() / 'data' / 'nuscenes-frame'


def manifests_dir() -> Path:
    """Folder holding the stock state-dict key manifests (JSON)."""
    return shared_dir() / 'manifests'


def upstream_mmdet3d_dir() -> Path:
    """The unmodified mmdetection3d v1.4.0 checkout (projects/BEVFusion, configs/_base_)."""
    return shared_dir() / 'upstream' / 'mmdetection3d-v1.4.0'
