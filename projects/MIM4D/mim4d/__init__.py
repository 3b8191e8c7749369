"""MIM4D glue for mmdet3d: importing this package registers its modules."""
import render_pretrain  # noqa: F401  (applies the compat shims)

__all__ = []
