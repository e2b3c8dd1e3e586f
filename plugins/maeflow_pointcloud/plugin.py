"""Registration of the point-cloud plugin's components (loaded through the ``maeflow`` entry point)."""

from importlib.resources import files

from maeflow import hookimpl
from maeflow_pointcloud.data import pointcloud_codec, pointcloud_folder, synthetic_shapes
from maeflow_pointcloud.formats import PointMAEFormat
from maeflow_pointcloud.loss import ChamferL2Loss
from maeflow_pointcloud.masking import BlockMasker
from maeflow_pointcloud.presets import PRESETS
from maeflow_pointcloud.tokenizer import PointGroupTokenizer
from maeflow_pointcloud.visualize import pointcloud_reconstruction_figure


@hookimpl
def maeflow_register(registry):
    registry.tokenizer("point_groups", PointGroupTokenizer)
    registry.masker("point_block", BlockMasker)
    registry.loss("chamfer_l2", ChamferL2Loss)
    for name, builder in PRESETS.items():
        registry.model(name, builder)
    registry.demo("pointcloud", files(__package__) / "configs" / "demo.yaml")
    registry.dataset("synthetic_shapes", synthetic_shapes)
    registry.dataset("pointcloud_folder", pointcloud_folder)
    registry.codec("pointcloud_folder", pointcloud_codec)
    registry.checkpoint_format("pointmae", PointMAEFormat())
    registry.visualizer("pointcloud", pointcloud_reconstruction_figure)
