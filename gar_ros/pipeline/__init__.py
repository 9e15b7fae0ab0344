"""ROS-free GAR pipeline shared by the node and the bag evaluator.

Frames (image + stamp + frame_id) and region sets join by stamp (``store``), a describe policy picks
the regions to describe (``policy``), questions map ``<region:ID>`` to ``<PromptK>`` (``references``),
and :class:`Pipeline` runs the model on a worker thread or synchronously (``pipeline``).
"""
from gar_ros.pipeline.config import PipelineConfig
from gar_ros.pipeline.frames import (
    Description,
    DescriptionBatch,
    Frame,
    JoinedFrame,
    QueryRequest,
    QueryResult,
    QueryTicket,
    RegionSet,
)
from gar_ros.pipeline.pipeline import Pipeline
from gar_ros.pipeline.policy import DescribePolicy
from gar_ros.pipeline.references import MappedQuestion, map_references
from gar_ros.pipeline.regions import resolve_region, resolve_regions
from gar_ros.pipeline.stats import PipelineStats
from gar_ros.pipeline.store import FrameStore

__all__ = [
    "Description",
    "DescriptionBatch",
    "DescribePolicy",
    "Frame",
    "FrameStore",
    "JoinedFrame",
    "MappedQuestion",
    "Pipeline",
    "PipelineConfig",
    "PipelineStats",
    "QueryRequest",
    "QueryResult",
    "QueryTicket",
    "RegionSet",
    "map_references",
    "resolve_region",
    "resolve_regions",
]
