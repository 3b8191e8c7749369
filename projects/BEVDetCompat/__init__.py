"""BEVDetCompat: a BEVDet-compatible camera detector built from stock mmdet3d 1.x parts."""
