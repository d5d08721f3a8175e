"""The ONNX model metadata: one JSON object under the ``metadata_props`` key ``restcn``.

It is the model's :class:`~restcn_infer.spec.ModelSpec` plus what export added: the decoder
layers of the ``decoded`` output and the export facts (precision, opset, exporter, parity)::

    {"format_version": 2,
     "architecture": "res-tcn", "input": {"layout", "joint_names", "bodies", "window", "policy",
     "coords", "D"}, "classes": [...], "mean": [D floats], "config": {...},
     "training": {...}, "metrics": {...},
     "decoder_layers": [1, 4, 7, 10], "export": {"precision", "opset", "exporter", ...}}

Export writes it; the runtime reads only it (no torch checkpoint, no config file). Models written
by restcn 0.1 (format 1: flat fields, export facts under a second key ``restcn_export``) are
read too. A field the runtime cannot honour is refused with
:class:`~restcn_infer.errors.ModelError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from restcn_infer.errors import ModelError
from restcn_infer.fields import Fields
from restcn_infer.spec import ModelSpec, spec_from_format1

METADATA_KEY = "restcn"
#: Where format 1 kept the export facts.
FORMAT1_EXPORT_KEY = "restcn_export"
#: Bumped when a change would make an older runtime misread a model.
FORMAT_VERSION = 2
#: Layers the Feature Map Decoder can decode: conv1 and the 9 residual units.
MAX_DECODER_LAYER = 10


@dataclass(frozen=True)
class ModelMetadata:
    """What a deployed model says about itself.

    Attributes:
        spec: the model description (input, classes, mean, architecture, training, metrics).
        decoder_layers: layers the graph's ``decoded`` output holds (empty: no decoder head).
        export: how the file was made (``precision``, ``opset``, ``exporter``, ...).
        format_version: the format the metadata was read from (written: always the current).
    """

    spec: ModelSpec
    decoder_layers: tuple[int, ...] = ()
    export: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_layers", tuple(int(x) for x in self.decoder_layers))
        bad = [x for x in self.decoder_layers if not 1 <= x <= MAX_DECODER_LAYER]
        if bad or len(set(self.decoder_layers)) != len(self.decoder_layers):
            raise ModelError(f"decoder layers must be distinct and lie in 1..{MAX_DECODER_LAYER}, "
                             f"got {list(self.decoder_layers)}")

    def to_json(self) -> str:
        doc = {"format_version": FORMAT_VERSION, **self.spec.to_dict(),
               "decoder_layers": list(self.decoder_layers), "export": dict(self.export)}
        return json.dumps(doc, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | None, source: str = "model",
                  format1_export: str | None = None) -> ModelMetadata:
        """Parse and validate (format 1 or 2); :class:`ModelError` says what is wrong.

        Args:
            format1_export: the ``restcn_export`` entry of a format-1 model, if any.
        """
        if text is None:
            raise ModelError(
                f"{source}: no '{METADATA_KEY}' metadata; was it written by restcn-export?"
            )
        raw = _loads(text, f"{source}: '{METADATA_KEY}' metadata")
        f = Fields(raw, f"{source}: metadata", ModelError)
        version = f.int("format_version", low=1)
        if version > FORMAT_VERSION:
            raise ModelError(
                f"{source}: metadata format_version {version} is newer than this runtime "
                f"supports ({FORMAT_VERSION}); upgrade restcn"
            )
        if version == 1:
            spec = spec_from_format1(raw, f"{source}: metadata")
            export = (_loads(format1_export, f"{source}: '{FORMAT1_EXPORT_KEY}' metadata")
                      if format1_export else {})
            export = export if isinstance(export, dict) else {}
        else:
            spec = ModelSpec.from_dict(raw, f"{source}: metadata")
            export = f.object("export", {})
        layers = f.int_list("decoder_layers", [], low=1, high=MAX_DECODER_LAYER)
        try:
            return cls(spec=spec, decoder_layers=tuple(layers), export=export,
                       format_version=version)
        except ModelError as exc:
            raise ModelError(f"{source}: metadata: {exc}") from None

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> ModelMetadata:
        """From an ONNX file's ``metadata_props`` (a session's ``custom_metadata_map``)."""
        return cls.from_json(props.get(METADATA_KEY), source, props.get(FORMAT1_EXPORT_KEY))


def _loads(text: str, where: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity (not JSON) and names the document."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{where} is not JSON: {exc}") from None
