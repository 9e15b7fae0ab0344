"""gar_ros: region-level visual understanding for ROS 2 with GAR (Grasp Any Region).

The pure-Python library (model, pipeline, queries, evaluation) works without ROS. When the
package is built with colcon, the generated interface modules (``gar_ros.msg``, ``gar_ros.srv``,
``gar_ros.action``) live in the install tree's copy of this package; ``extend_path`` merges the
two directories so that both import from a source checkout too.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
