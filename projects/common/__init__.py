"""Registered modules shared by the pre-training and downstream glue packages.

Importing registers, in mmdet3d's registries: hooks ``SeededRandomnessHook``
(augmentation draws keyed by seed, rank, epoch and worker) and
``ValidateBeforeTrainHook`` (a validation before the first step), metric
``RenderQualityMetric`` (held-out render PSNR / depth error), model
``PatchImageMasker`` (the image patch masking that ``NSMAEImageMasker`` and
``MIM4DImageMasker`` specialise). The base class
of the render pictures' hooks (``render_visualization_hook``) is not
registered: the projects register its subclasses. Tool logic (config
loading, environment check, the transfer experiment) lives in ``tools/``.
"""
from render_pretrain import compat  # noqa: F401  (applies the environment shims)
from .patch_image_masker import PatchImageMasker
from .render_quality_metric import RenderQualityMetric
from .seeded_randomness_hook import SeededRandomnessHook
from .validate_before_train_hook import ValidateBeforeTrainHook

__all__ = ['PatchImageMasker', 'RenderQualityMetric', 'SeededRandomnessHook',
           'ValidateBeforeTrainHook']
