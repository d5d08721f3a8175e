"""Graph passes applied to an exported ONNX graph before its parity check (each one exact):

- :mod:`.decoder_gate`: the ``decoded`` head runs only when asked for (optional ``decode`` input);
- :mod:`.conv_layout`: 1-D convolutions as 2-D ones for onnxruntime's fastest CPU kernels;
- :mod:`.fp16_storage`: float16 storage of weights that lose nothing, float32 compute.
"""
