"""Evaluation of gar_ros on recorded data: rosbag2 replay through the pipeline, scoring, reports.

Commands (``gar-ros``, see ``cli.py``):
- ``score PREDICTIONS [--gt ANNOTATIONS]``: GAR-Bench-VQA protocol (first letter of
  ``model_output`` vs ``answer``, per ``type`` and overall), ``scoring.py``.
- ``bag-from-benchmark ANNOTATIONS OUT_BAG``, ``bag-from-images IMAGES --out BAG``,
  ``bag-from-synthetic OUT_BAG``: evaluation bags (``builders.py``, ``synthetic_bag.py``).
- ``bag-eval BAG --out DIR``: replay (``replay.py``) or ``--live`` against a running gar_node
  (``live.py``), grading (``grading.py``), files (``report.py``).

Bags are read and written with ``rosbags`` (sqlite3 and MCAP); gar_ros's own messages are
registered from its ``.msg`` files (``typestore.py``). Ground truth travels in the bag as JSON on
a ``std_msgs/String`` topic whose name ends in ``ground_truth`` (``/gar/ground_truth``), one
object per query or described frame::

    {"query_id": "vqa_61", "kind": "multiple_choice", "answer": "C", "type": "color", ...}
    {"query_id": "ground_7", "kind": "grounding", "region_ids": ["obj2"], "type": "grounding:leftmost"}
    {"query_id": "describe_7", "kind": "description", "stamp": <frame ns>,
     "keywords": {"obj0": ["red", "square"]}, "references": {"obj0": "a small red square"}}

``bag-eval --gt FILE`` takes a JSON list of the same objects, or GAR-Bench-VQA annotation items;
they take precedence over records of the same query in the bag.
"""
