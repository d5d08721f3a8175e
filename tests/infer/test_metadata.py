"""The ONNX metadata contract: round trip, typed validation of every field, format 1 still read."""

import json

import numpy as np
import pytest

from conftest import FORMAT_V1
from restcn_infer.errors import ModelError
from restcn_infer.layouts import KINECT20
from restcn_infer.metadata import FORMAT_VERSION, ModelMetadata
from restcn_infer.spec import InputSpec, ModelSpec


def make_meta(**spec_changes) -> ModelMetadata:
    spec = ModelSpec(architecture="res-tcn", input=InputSpec(layout=KINECT20, bodies=1, window=64),
                     classes=("a", "b", "c"), mean=(0.0,) * 60,
                     metrics={"final_val_accuracy": 0.8}, **spec_changes)
    return ModelMetadata(spec=spec, decoder_layers=(1, 4, 7, 10), export={"precision": "fp32"})


def edited(path: list, value) -> str:
    """The metadata JSON of :func:`make_meta` with one field replaced (``None``: removed)."""
    raw = json.loads(make_meta().to_json())
    node = raw
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(raw)


def test_round_trip():
    meta = make_meta()
    assert ModelMetadata.from_json(meta.to_json()) == meta
    raw = json.loads(meta.to_json())
    assert raw["format_version"] == FORMAT_VERSION == 2
    assert raw["input"] == {"layout": "kinect20", "joint_names": list(KINECT20.joint_names),
                            "bodies": 1, "window": 64, "policy": "resample", "coords": 3, "D": 60}


@pytest.mark.parametrize(("path", "value", "message"), [
    (["architecture"], 5, "'architecture' must be a non-empty string, got 5"),
    (["classes"], 5, "'classes' must be a list of non-empty strings, got 5"),
    (["classes"], "ab", "'classes' must be a list of non-empty strings, got 'ab'"),
    (["classes"], ["only"], "at least 2 classes"),
    (["classes"], ["a", "a", "b"], "'classes' repeats ['a']"),
    (["mean"], [0.0] * 3, "mean has 3 values, expected D = 60"),
    (["mean"], ["x"] * 60, "'mean' must be a list of numbers"),
    (["input", "layout"], "coco99", "'layout' is unknown to this runtime"),
    (["input", "joint_names"], ["a"] * 20, "'joint_names' do not match layout kinect20"),
    (["input", "D"], 75, "'D' is 75, expected bodies*joints*coords = 60"),
    (["input", "window"], 0, "'window' must lie in 1..10000, got 0"),
    (["input", "window"], 10**9, "'window' must lie in 1..10000"),
    (["input", "window"], "64", "'window' must be an integer, got '64'"),
    (["input", "window"], True, "'window' must be an integer, got True"),
    (["input", "bodies"], 99, "'bodies' must lie in 1..16"),
    (["input", "policy"], "crop", "'policy' is 'crop', expected one of"),
    (["input"], None, "lacks the field 'input'"),
    (["decoder_layers"], [11], "'decoder_layers' must lie in 1..10, got [11]"),
    (["decoder_layers"], "1,4", "'decoder_layers' must be a list of integers"),
    (["training"], [1], "'training' must be a JSON object"),
])
def test_every_field_is_typed_and_checked(path, value, message):
    with pytest.raises(ModelError) as info:
        ModelMetadata.from_json(edited(path, value), source="m.onnx")
    assert message in str(info.value) and str(info.value).startswith("m.onnx: metadata")


def test_nan_is_not_json():
    text = make_meta().to_json().replace('"mean":[0.0', '"mean":[NaN', 1)
    with pytest.raises(ModelError, match="NaN is not a JSON number"):
        ModelMetadata.from_json(text)


def test_newer_format_version_is_refused_with_advice():
    with pytest.raises(ModelError, match="newer.*upgrade"):
        ModelMetadata.from_json(edited(["format_version"], FORMAT_VERSION + 1))


@pytest.mark.parametrize("text", [None, "{not json", "[1, 2]", '{"format_version": 1}',
                                  '{"format_version": "2"}', "[" * 100_000])
def test_missing_or_broken_metadata(text):
    with pytest.raises(ModelError):
        ModelMetadata.from_json(text)


def test_unknown_extra_fields_are_ignored_for_forward_compatibility():
    raw = json.loads(make_meta().to_json())
    raw["added_in_a_later_minor_release"] = 1
    assert ModelMetadata.from_json(json.dumps(raw)) == make_meta()


def test_format1_metadata_is_read():
    import onnxruntime as ort

    session = ort.InferenceSession(str(FORMAT_V1 / "res_tcn.onnx"),
                                   providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["restcn"])["format_version"] == 1
    meta = ModelMetadata.from_props(props, "res_tcn.onnx")
    assert meta.format_version == 1 and meta.decoder_layers == (1, 10)
    assert meta.spec.input == InputSpec(layout=KINECT20, bodies=1, window=32)
    assert meta.spec.classes == ("wave", "clap", "sit", "jump")
    assert meta.export["precision"] == "fp16"
    assert meta.spec.mean_array.shape == (60,) and np.isfinite(meta.spec.mean_array).all()


#: A user layout (not built in) of four joints.
MY_LAYOUT = {"name": "my_layout", "joints": ["pelvis", "chest", "l_hand", "r_hand"],
             "bones": [["chest", "pelvis"], ["l_hand", "chest"], ["r_hand", "chest"]],
             "groups": {"hands": ["l_hand", "r_hand"]},
             "aliases": {"pelvis": "SpineBase", "l_hand": "HandLeft"}}


def custom_meta() -> ModelMetadata:
    from restcn_infer.layouts import JointLayout

    spec = ModelSpec(architecture="res-tcn",
                     input=InputSpec(layout=JointLayout.from_dict(MY_LAYOUT), bodies=1, window=8),
                     classes=("a", "b"), mean=(0.0,) * 12)
    return ModelMetadata(spec=spec)


def test_a_user_layout_travels_in_the_model():
    raw = json.loads(custom_meta().to_json())
    assert raw["input"]["layout_definition"]["joints"] == MY_LAYOUT["joints"]
    assert "layout_definition" not in json.loads(make_meta().to_json())["input"]  # built in
    meta = ModelMetadata.from_json(custom_meta().to_json())
    assert meta == custom_meta()
    layout = meta.spec.input.layout
    assert layout.groups["hands"] == (2, 3) and layout.canonical_name(0) == "SpineBase"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(layout="other"),
     "field 'layout_definition' defines layout 'my_layout', but field 'layout' names 'other'"),
    (lambda d: d["layout_definition"].update(bones=[[0, 9]]),
     "field 'layout_definition' field 'bones[0]' names 9"),
    (lambda d: d.update(layout_definition=[1]), "'layout_definition' must be a JSON object"),
    (lambda d: d.pop("layout_definition"), "'layout' is unknown to this runtime"),
])
def test_a_broken_layout_definition_names_the_field(change, message):
    raw = json.loads(custom_meta().to_json())
    change(raw["input"])
    with pytest.raises(ModelError) as info:
        ModelMetadata.from_json(json.dumps(raw), source="m.onnx")
    assert message in str(info.value) and str(info.value).startswith("m.onnx: metadata")


def test_a_2d_model_says_so_and_its_envelope_has_2d_vectors():
    from restcn_infer.envelope import Envelope
    from restcn_infer.layouts import COCO17

    env = Envelope("training data", 10, (40.0, 60.0, 90.0), up=(0.0, -1.0),
                   centre_low=(100.0, 200.0), centre_high=(900.0, 700.0))
    spec = ModelSpec(architecture="res-tcn",
                     input=InputSpec(layout=COCO17, bodies=2, window=16, coords=2),
                     classes=("a", "b"), mean=(0.0,) * 68, envelope=env)
    meta = ModelMetadata(spec=spec)
    raw = json.loads(meta.to_json())
    assert raw["input"]["coords"] == 2 and raw["input"]["D"] == 68
    assert ModelMetadata.from_json(meta.to_json()) == meta
    raw["envelope"]["up"] = [0.0, -1.0, 0.0]
    with pytest.raises(ModelError, match="field 'envelope' field 'up' must hold 2 numbers"):
        ModelMetadata.from_json(json.dumps(raw))
    with pytest.raises(ModelError, match="up has 3 values, the model reads 2 coordinates"):
        ModelSpec(architecture="res-tcn", input=spec.input, classes=("a", "b"),
                  mean=(0.0,) * 68, envelope=Envelope("training data", 1, (1.0, 1.0, 1.0),
                                                      up=(0.0, 1.0, 0.0)))


@pytest.mark.parametrize(("value", "message"), [
    (4, "'coords' must lie in 2..3, got 4"),
    (1, "'coords' must lie in 2..3, got 1"),
    (2, "'D' is 60, expected bodies*joints*coords = 40"),
])
def test_coords_are_checked(value, message):
    with pytest.raises(ModelError) as info:
        ModelMetadata.from_json(edited(["input", "coords"], value), source="m.onnx")
    assert message in str(info.value)
