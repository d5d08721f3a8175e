"""The ONNX metadata contract: round trip, and refusal of what the runtime cannot honour."""

import dataclasses
import json

import pytest

from restcn_infer.errors import ModelError
from restcn_infer.layouts import KINECT20
from restcn_infer.metadata import FORMAT_VERSION, ModelMetadata


def make_meta(**changes):
    meta = ModelMetadata(
        architecture="res-tcn", layout="kinect20", joint_names=list(KINECT20.joint_names),
        bodies=1, D=60, window=64, classes=["a", "b", "c"], mean=[0.0] * 60,
        decoder_layers=[1, 4, 7, 10],
    )
    return dataclasses.replace(meta, **changes)


def test_round_trip():
    meta = make_meta(metrics={"final_val_accuracy": 0.8})
    assert ModelMetadata.from_json(meta.to_json()) == meta


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"architecture": "resnet"}, "architecture"),
        ({"layout": "coco17"}, "layout"),
        ({"D": 75}, "D"),
        ({"mean": [0.0] * 3}, "mean"),
        ({"classes": ["only"]}, "classes"),
        ({"window": 0}, "window"),
        ({"window_policy": "crop"}, "window_policy"),
        ({"decoder_layers": [11]}, "decoder_layers"),
    ],
)
def test_inconsistent_fields_are_named(changes, field):
    with pytest.raises(ModelError, match=field):
        ModelMetadata.from_json(make_meta(**changes).to_json())


def test_newer_format_version_is_refused_with_advice():
    raw = json.loads(make_meta().to_json())
    raw["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ModelError, match="newer.*upgrade"):
        ModelMetadata.from_json(json.dumps(raw))


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]", '{"format_version": 1}'])
def test_missing_or_broken_metadata(text):
    with pytest.raises(ModelError):
        ModelMetadata.from_json(text)


def test_unknown_extra_fields_are_ignored_for_forward_compatibility():
    raw = json.loads(make_meta().to_json())
    raw["added_in_a_later_minor_release"] = 1
    assert ModelMetadata.from_json(json.dumps(raw)) == make_meta()
