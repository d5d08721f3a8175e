"""Graph passes applied to an exported ONNX graph before its parity check (each one exact):

- :mod:`.decoder_gate`: the ``decoded`` head runs only when asked for (optional ``decode`` input);
- :mod:`.conv_layout`: 1-D convolutions as 2-D ones for onnxruntime's fastest CPU kernels;
- :mod:`.trunk_layout`: then the whole trunk in that 4-D layout, no per-conv Unsqueeze/Squeeze;
- :mod:`.bn_as_conv`: int8 graphs only: BatchNorm as a depthwise conv, so it runs as an integer
  kernel (float rounding only);
- :mod:`.fp16_storage`: float16 storage of weights that lose nothing, float32 compute.
"""
