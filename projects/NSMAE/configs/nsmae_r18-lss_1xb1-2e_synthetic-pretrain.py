# Tiny sibling of nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py (camera
# only) for CPU runs on the synthetic world: the tiny C+L config without the
# LiDAR encoder, as the paper-scale camera config is the C+L one without it.
_base_ = ['./nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py']

model = dict(
    pts_voxel_encoder=None,
    pts_middle_encoder=None,
    fusion_layer=None,
    depth_input='none',
    bev_render_head=dict(in_channels=16))
