"""Tests of the NS-MAE mmdet3d glue (projects/NSMAE/nsmae)."""
