# Runtime of the pre-training and BEV-segmentation configs (NS-MAE, MIM4D,
# BEVSeg): mmdet3d's default hooks with a checkpoint every epoch (the last 3
# kept), NCCL, local visualisation of the render hooks' images. Each config
# adds its own custom_hooks. (The BEVDet and stock mmdet3d configs inherit
# mmdet3d::_base_/default_runtime.py instead.)
default_scope = 'mmdet3d'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
# Add dict(type='TensorboardVisBackend') to send the renderings to TensorBoard.
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Det3DLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
