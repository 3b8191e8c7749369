# BEVDet-R50's schedule (HuangJunJie2017/BEVDet configs/bevdet/bevdet-r50.py):
# AdamW 2e-4, weight decay 1e-2, no gradient clipping, 500-iteration linear
# warm-up from 1e-3, 24 epochs, x0.1 at epochs 16 and 22, on 8 GPUs x 8.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-2),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=24, milestones=[16, 22], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=24, val_interval=24)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)
