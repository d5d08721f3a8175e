"""restcn training side (installed as ``restcn_training``): models, data pipeline, engine.

Modules import torch themselves; importing this package alone does not.
"""
