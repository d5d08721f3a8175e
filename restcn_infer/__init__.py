"""restcn runtime: read skeleton files, preprocess them, classify with an ONNX model.

numpy + onnxruntime only: this package never imports torch, onnx, or the training code.
"""

from restcn_infer.errors import ModelError, SkeletonFormatError
from restcn_infer.layouts import JointLayout, get_layout
from restcn_infer.readers import Keypoints, load_sequence, read_keypoints

__all__ = ["JointLayout", "Keypoints", "ModelError", "SkeletonFormatError", "get_layout",
           "load_sequence", "read_keypoints"]
__version__ = "0.1.0"
