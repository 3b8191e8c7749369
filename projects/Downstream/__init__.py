"""Downstream detectors (BEVDet-compatible) built from stock mmdet3d 1.x parts."""
