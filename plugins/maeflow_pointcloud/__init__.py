"""Point-cloud MAE (Point-MAE): FPS + kNN groups, mini-PointNet tokens, Chamfer loss."""

from maeflow_pointcloud.grouping import farthest_point_sample, group_points, knn, normalize_unit_sphere
from maeflow_pointcloud.loss import ChamferL2Loss, chamfer_l2
from maeflow_pointcloud.masking import BlockMasker
from maeflow_pointcloud.presets import PointMAEConfig, build_point_mae
from maeflow_pointcloud.tokenizer import CenterPosEmbed, PointGroupTokenizer

__all__ = [
    "BlockMasker",
    "CenterPosEmbed",
    "ChamferL2Loss",
    "PointGroupTokenizer",
    "PointMAEConfig",
    "build_point_mae",
    "chamfer_l2",
    "farthest_point_sample",
    "group_points",
    "knn",
    "normalize_unit_sphere",
]
