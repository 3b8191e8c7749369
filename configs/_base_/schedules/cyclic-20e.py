# BEVFusion's map-segmentation schedule (mmdet3d's cyclic-20e): AdamW 1e-4
# (weight decay 0.01, none on Swin's position embeddings and relative
# position bias tables, gradients clipped at norm 35), 20 epochs on
# 8 GPUs x 4 samples, evaluated at the end. The cyclic policy: lr up to 10x
# over the first 40 %, cosine down to 1e-4 x; momentum (Adam beta1) mirrored
# with mmdet3d's cyclic-20e values as ABSOLUTE eta_min (beta1 0.9 -> 0.895,
# then up to 1.0; NS-MAE's cyclic-50e.py takes them as relative ratios).
max_epochs = 20
lr = 1e-4
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01),
    paramwise_cfg=dict(custom_keys=dict(
        absolute_pos_embed=dict(decay_mult=0.0),
        relative_position_bias_table=dict(decay_mult=0.0))),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=8, eta_min=lr * 10, begin=0, end=8,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=12, eta_min=lr * 1e-4, begin=8, end=20,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=8, eta_min=0.85 / 0.95, begin=0, end=8,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='CosineAnnealingMomentum', T_max=12, eta_min=1, begin=8, end=20,
         by_epoch=True, convert_to_iter_based=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
