# NS-MAE pre-training, camera only: the C+L config without the LiDAR
# encoder. LiDAR points are still loaded: they give the perspective depth
# target and the BEV target (every occupied voxel, since no voxel is input).
# The LSS depth prior gets no LiDAR input (depth_input='none').
_base_ = ['./nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py']

model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    depth_input='none',
    bev_render_head=dict(in_channels=80))
# No LiDAR encoder, so no LiDAR-encoder freeze.
custom_hooks = [
    dict(type='SeededRandomnessHook'),
    dict(type='NSMAERenderVisualizationHook', interval=1000, max_samples=1)
]
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=False)
