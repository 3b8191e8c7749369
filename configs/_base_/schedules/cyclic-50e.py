# NS-MAE's pre-training schedule: AdamW 1e-4 (weight decay 0.01, gradients
# clipped at norm 35), 50 epochs, evaluated every 10, on 8 GPUs x 2 samples.
# BEVFusion's cyclic schedule (mmcv's cyclic lr/momentum updaters, released
# with target ratios (10, 1e-4) and (0.85 / 0.95, 1), step_ratio_up 0.4)
# stretched to 50 epochs: lr up to 10x over the first 40 %, then cosine decay
# to 1e-4 x; Adam beta1 down to 0.85 / 0.95 of its start (0.9 -> 0.805)
# over the same 40 %, then back to its start. The momentum ratios are
# RELATIVE (eta_min_ratio): mmdet3d's cyclic-20e writes them as absolute
# eta_min, which drives beta1 to 1.0.
max_epochs = 50
lr = 1e-4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, eta_min=lr * 10, begin=0, end=20,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=30, eta_min=lr * 1e-4, begin=20, end=50,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=20, eta_min_ratio=0.85 / 0.95, begin=0,
         end=20, by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=30, eta_min_ratio=1.0, begin=20, end=50,
         by_epoch=True, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
