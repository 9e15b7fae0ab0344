"""gar_ros.ros: the ROS 2 adapter around :mod:`gar_ros.pipeline`.

- ``node``: the ``gar_node`` lifecycle node and its ``main()`` (``python -m gar_ros.ros.node``);
- ``images``: sensor_msgs Image/CompressedImage ↔ RGB arrays (cv_bridge when importable);
- ``regions``: gar_ros Region/RegionArray/RegionDescriptionArray messages ↔ gar_ros types;
  the readers of both are duck-typed and rclpy-free, shared with the bag evaluator;
- ``local``: a gar_node and a client node spun in this process (demo, benchmark, tests);
- ``params``: the node's parameters with descriptors; ``diagnostics``: the /diagnostics message;
- ``debug_image``: the annotated frame; ``cli``: ``gar-ros node``.
Importing this package does not import rclpy; the submodules that need it do.
"""
