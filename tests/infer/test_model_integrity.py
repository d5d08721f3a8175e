"""A model is refused when its weights do not match their digest or its metadata disagrees with
its graph; a non-finite score is an error for that input only, never an answer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bodies import body_sequence
from helpers import CLASSES
from restcn_infer.classifier import Classifier, NonFiniteScoresError
from restcn_infer.errors import ModelError
from restcn_infer.metadata import METADATA_KEY
from restcn_infer.model_digest import DIGEST_KEY, top_level_fields, verify_weights, weights_digest

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def model_path(tiny_export):
    return tiny_export()


def metadata_of(proto) -> dict:
    return json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))


def rewrite(src, dst, edit_doc=None, edit_proto=None):
    """A copy of model ``src`` with its metadata document and/or graph edited."""
    proto = onnx.load(str(src))
    if edit_proto is not None:
        edit_proto(proto)
    if edit_doc is not None:
        doc = metadata_of(proto)
        edit_doc(doc)
        for p in proto.metadata_props:
            if p.key == METADATA_KEY:
                p.value = json.dumps(doc)
    onnx.save(proto, str(dst))
    return dst


def poison_weights(proto, value=np.float32(np.nan)):
    """Set every value of the first large float initializer to ``value`` (in raw_data)."""
    from onnx import numpy_helper

    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 100:
            init.CopyFrom(numpy_helper.from_array(np.full_like(array, value), init.name))
            return
    raise AssertionError("no float initializer")


# -- the digest ---------------------------------------------------------------------------------

def test_export_stores_a_digest_that_the_runtime_verifies(model_path):
    clf = Classifier(model_path, device="cpu")
    assert clf.weights_verified
    digest = clf.metadata.export[DIGEST_KEY]
    assert digest == weights_digest(model_path.read_bytes())
    proto = onnx.load(str(model_path))
    del proto.metadata_props[:]  # what export hashed: everything but metadata_props
    assert digest == weights_digest(proto.SerializeToString())


def test_changed_weights_are_refused(model_path, tmp_path):
    bad = rewrite(model_path, tmp_path / "m.onnx", edit_proto=poison_weights)
    with pytest.raises(ModelError, match="weights do not match the digest"):
        Classifier(bad, device="cpu")


def test_flipped_bytes_never_give_an_answer(model_path, tmp_path):
    data = bytearray(model_path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(len(data) // 4, len(data) // 2, 2000):
        data[i] ^= 0xFF
    path = tmp_path / "flipped.onnx"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError):
        Classifier(path, device="cpu")


def test_a_malformed_digest_is_refused(model_path, tmp_path):
    def edit(doc):
        doc["export"][DIGEST_KEY] = "md5:1234"

    with pytest.raises(ModelError, match="must be 'sha256:' and 64 hex digits"):
        Classifier(rewrite(model_path, tmp_path / "m.onnx", edit), device="cpu")


def test_a_model_without_digest_is_checked_by_its_probe_run(model_path, tmp_path):
    def no_digest(doc):
        del doc["export"][DIGEST_KEY]

    plain = rewrite(model_path, tmp_path / "plain.onnx", no_digest)
    assert not Classifier(plain, device="cpu").weights_verified  # loads, unverified
    nan = rewrite(model_path, tmp_path / "nan.onnx", no_digest, poison_weights)
    with pytest.raises(ModelError, match="non-finite scores for its own mean skeleton"):
        Classifier(nan, device="cpu")


def test_the_protobuf_walk_refuses_garbage():
    assert verify_weights(b"", None, "m") is False
    for garbage in (b"\x08", b"\x0a\xff\xff\xff\xff\x0f", b"\x0b", b"\x00\x00"):
        with pytest.raises(ModelError, match="not an ONNX model"):
            list(top_level_fields(garbage))


# -- metadata against the graph -----------------------------------------------------------------

@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(classes=CLASSES[:3]), "'classes' gives 3, but the graph's 'logits' has "
                                              "size 4"),
    (lambda d: d.update(classes=CLASSES + ["extra"]), "'classes' gives 5"),
    (lambda d: d.update(decoder_layers=[1, 4]), "'decoder_layers' gives 2"),
    (lambda d: d["input"].update(bodies=2, D=120) or d.update(mean=d["mean"] * 2),
     "'input.D' gives 120"),
    (lambda d: d["input"].update(window=10**9), "window"),
    (lambda d: d.update(envelope={"scale": [1, 2]}), "'envelope'"),
], ids=["fewer-classes", "more-classes", "decoder-layers", "input-size", "huge-window",
        "bad-envelope"])
def test_metadata_that_disagrees_with_the_graph_is_refused(model_path, tmp_path, edit, match):
    with pytest.raises(ModelError, match=match):
        Classifier(rewrite(model_path, tmp_path / "m.onnx", edit), device="cpu")


# -- non-finite scores --------------------------------------------------------------------------

def test_non_finite_scores_are_an_error_for_that_file_only(model_path, tmp_path, monkeypatch):
    clf = Classifier(model_path, device="cpu")
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"s{i}.npy")
        np.save(paths[-1], body_sequence(20, seed=i))
    real_run = clf.run

    def run(batch, *, decode=False):
        logits, decoded = real_run(batch, decode=decode)
        logits = logits.copy()
        logits[1] = np.nan  # the second input's scores
        return logits, decoded

    monkeypatch.setattr(clf, "run", run)
    results = list(clf.classify_files(paths, top_k=2))
    assert [r.error is None for r in results] == [True, False, True]
    assert isinstance(results[1].error, NonFiniteScoresError)
    assert str(results[1].error).startswith(f"{paths[1]}: the model's scores")
    with pytest.raises(NonFiniteScoresError):
        clf.predict(np.array([[0.0, np.inf, 1.0, 2.0]]))
