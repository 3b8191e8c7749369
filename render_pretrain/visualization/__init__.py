"""Visual checks of data (camera images, LiDAR projection, 3D boxes, BEV maps)."""
from .sample_overview import (compose_sample_overview, load_sample_overview,
                              save_overview_png)

__all__ = ['compose_sample_overview', 'load_sample_overview', 'save_overview_png']
