"""Classify skeleton sequences with an exported restcn model: numpy pre-process -> run -> softmax.

One :class:`Classifier` owns one onnxruntime session. Everything it knows about the model comes
from the model's ``restcn`` metadata (:class:`~restcn_infer.metadata.ModelMetadata`), whose
:class:`~restcn_infer.spec.ModelSpec` says how to read an input (``clf.spec.input.prepare``)::

    clf = Classifier()                                  # the bundled NW-UCLA model
    for result in clf.classify_files(["a.skeleton", "b.npy"]):
        print(result.path, result.error or result.top[0].name)

What it refuses, so that an answer is never confidently wrong:

- a model whose weights do not match the digest in its metadata
  (:mod:`restcn_infer.model_digest`), or whose metadata disagrees with its graph: the class
  count with the ``logits`` size, ``D`` with the input size, the decoder layers with the
  ``decoded`` size (checked on the static shapes and by one probe run on the mean skeleton);
- an input unlike the training data (:mod:`restcn_infer.plausibility`): other units, an
  inverted axis, 2-D keypoints, another joint order; ``options`` (:class:`InputOptions`) convert
  the input first or accept it anyway;
- an input whose scores come out non-finite (:class:`NonFiniteScoresError`, for that input
  only; the others in the batch are answered).

Files are read by :func:`~restcn_infer.readers.read_keypoints` (NTU, arrays, pose-estimator
output), joints below the confidence threshold zeroed, and must have the model's coordinates
(3-D, or 2-D for a 2-D model). A file's layout is the one it names, else ``options.layout``,
else its joint count's; a guess is checked against the bone lengths and announced once (INFO
on the ``restcn_infer`` logger), and a file in another layout than the model's is mapped by
joint name (e.g. an NTU ``.skeleton`` into a ``kinect20`` model), which is logged once per
layout (WARNING).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restcn_infer.backends import create_session
from restcn_infer.checked_input import (  # noqa: F401 - importable from here as before
    NonFiniteScoresError,
    Prediction,
    PreparedInput,
    finite_rows,
    prepare_checked,
    rank,
)
from restcn_infer.errors import ModelError, SkeletonFormatError
from restcn_infer.input_options import InputOptions
from restcn_infer.layouts import JointLayout
from restcn_infer.metadata import ModelMetadata
from restcn_infer.model_digest import DIGEST_KEY, verify_weights
from restcn_infer.models import BUNDLED_MODELS, resolve_model
from restcn_infer.plausibility import InputChecker, Verdict
from restcn_infer.readers import read_keypoints
from restcn_infer.spec import ModelSpec

log = logging.getLogger("restcn_infer")

#: protobuf cannot hold a larger model in one file; refuse before reading.
MAX_MODEL_BYTES = 2 << 30


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file: ``top`` predictions and the input ``verdict``, or the
    ``error`` that stopped it."""

    path: Path
    top: list[Prediction] | None = None
    error: Exception | None = None
    verdict: Verdict | None = None


def load_model_metadata(session, source: str) -> ModelMetadata:
    """Read and validate the ``restcn`` metadata of a session's model (:class:`ModelError`)."""
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, source)


def _read_model(path: Path) -> bytes:
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, expected an .onnx model file")
    if not path.is_file():
        raise ModelError(f"{path}: no such model file (bundled models by name: "
                         f"{', '.join(BUNDLED_MODELS)})")
    try:
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelError(f"{path}: larger than {MAX_MODEL_BYTES:,} bytes, which one ONNX "
                             "file cannot hold")
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model ({exc.strerror or exc})") from None


class Classifier:
    """An exported restcn model over one onnxruntime session.

    Args:
        model: an ``.onnx`` file written by ``restcn-export``, or the name of a bundled model
            (``res-tcn``, ``ms-res-tcn``); ``None``: the default bundled model.
        device: ``auto`` (CUDA, else CPU with one logged line), ``cuda``, ``cpu``,
            ``tensorrt`` or ``openvino`` (:mod:`restcn_infer.backends`).
        threads: onnxruntime intra-op threads; ``None``: one per physical core.
        options: how to read inputs (layout, units, axis flip, accept implausible input).

    Raises:
        ModelError: the file is missing, not a loadable ONNX model, its weights do not match
            their digest, or its metadata is missing, corrupt, of a newer format version, or
            disagrees with the graph (the message names the field).
        DeviceError: ``device="cuda"`` and CUDA cannot be started.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None, *, device: str = "auto",
                 threads: int | None = None, options: InputOptions | None = None) -> None:
        self.model_path = resolve_model(model)
        data = _read_model(self.model_path)
        self.session = create_session(self.model_path, device=device, threads=threads, data=data)
        self.metadata = load_model_metadata(self.session, str(self.model_path))
        #: Whether the weights were checked against a stored digest (False: none stored).
        self.weights_verified = verify_weights(data, self.metadata.export.get(DIGEST_KEY),
                                               str(self.model_path))
        del data
        self.spec: ModelSpec = self.metadata.spec
        self.providers: list[str] = self.session.get_providers()
        self.options = options or InputOptions()
        self.options.check_model(self.spec.input)
        self.checker = InputChecker(self.spec, accept_implausible=self.options.accept_implausible)
        self._check_graph()
        self._announced: set[tuple[str, bool]] = set()

    # -- the model ----------------------------------------------------------------------------

    def _check_graph(self) -> None:
        """The graph must have the inputs and outputs its metadata promises, of those sizes."""
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        where = f"{self.model_path}: metadata"
        if "skeleton" not in inputs or "logits" not in outputs:
            raise ModelError(f"{self.model_path}: expected input 'skeleton' and output 'logits', "
                             f"got inputs {sorted(inputs)} and outputs {sorted(outputs)}")
        skeleton = inputs["skeleton"]
        if skeleton.type != "tensor(float)" or len(skeleton.shape) != 3:
            raise ModelError(f"{self.model_path}: input 'skeleton' must be a float tensor "
                             f"(batch, time, D), got {skeleton.type} {skeleton.shape}")
        spec, layers = self.spec, self.metadata.decoder_layers
        expected = {"skeleton": (skeleton.shape[-1], spec.input.D, "input.D"),
                    "logits": (outputs["logits"].shape[-1], spec.num_classes, "classes")}
        if layers:
            if "decoded" not in outputs:
                raise ModelError(f"{where} field 'decoder_layers' lists {list(layers)} but the "
                                 "graph has no 'decoded' output")
            shape = outputs["decoded"].shape
            if len(shape) != 4:
                raise ModelError(f"{self.model_path}: output 'decoded' must be (batch, L, time, "
                                 f"D), got {shape}")
            expected["decoded"] = (shape[1], len(layers), "decoder_layers")
        for name, (size, promised, field) in expected.items():
            if isinstance(size, int) and size != promised:
                raise ModelError(f"{where} field {field!r} gives {promised}, but the graph's "
                                 f"{name!r} has size {size}")
        # restcn-export gates the decoder head behind an optional input (an initializer).
        self._has_decode_input = any(i.name == "decode"
                                     for i in self.session.get_overridable_initializers())
        self._probe(where)

    def _probe(self, where: str) -> None:
        """One run on the mean skeleton: the sizes the graph really produces, and finite ones."""
        spec, layers = self.spec, self.metadata.decoder_layers
        x = np.broadcast_to(spec.mean_array, (1, spec.input.window, spec.input.D))
        try:
            logits, decoded = self.run(x, decode=bool(layers))
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime's own failures have no common base
            raise ModelError(f"{self.model_path}: the graph fails on an input of the size its "
                             f"metadata gives ({type(exc).__name__}: {str(exc)[:200]})") from None
        if logits.shape != (1, spec.num_classes):
            raise ModelError(f"{where} field 'classes' names {spec.num_classes} classes, but "
                             f"the graph gives logits of shape {logits.shape}")
        want = (1, len(layers), spec.input.window, spec.input.D)
        if decoded is not None and decoded.shape != want:
            raise ModelError(f"{where} field 'decoder_layers' promises decoded {want} "
                             f"(batch, layers, window, D), the graph gives {decoded.shape}")
        if not finite_rows(logits, decoded).all():
            raise ModelError(f"{self.model_path}: the model gives non-finite scores for its own "
                             "mean skeleton: its weights are damaged")

    # -- inputs -------------------------------------------------------------------------------

    def prepare_input(self, seq: np.ndarray, *, source_layout: JointLayout | None = None,
                      source: object = None) -> PreparedInput:
        """A sequence ``(M, T, V, C)`` or ``(T, V, C)`` as one checked network input, ``C``
        the model's coordinates.

        Converted by :attr:`options` (units, axis), its layout declared (``source_layout``,
        else ``options.layout``) or guessed from the joint count, mapped to the model's layout,
        checked for plausibility, then windowed (:meth:`InputSpec.prepare
        <restcn_infer.spec.InputSpec.prepare>`'s steps).

        Raises:
            SkeletonFormatError: naming ``source``: empty, non-finite, unmappable joints, or
                (:class:`~restcn_infer.plausibility.ImplausibleInputError`) implausible.
        """
        prepared = prepare_checked(self.spec, self.checker, self.options, seq,
                                   source_layout=source_layout, source=source)
        self.note_layout(prepared.layout, prepared.guessed)
        return prepared

    def prepare(self, seq: np.ndarray, *, source_layout: JointLayout | None = None,
                source: object = None) -> np.ndarray:
        """:meth:`prepare_input`'s network input ``(window, D)`` float32 alone."""
        return self.prepare_input(seq, source_layout=source_layout, source=source).x

    def note_layout(self, layout: JointLayout, guessed: bool) -> None:
        """Say once per layout that it was guessed, or mapped to the model's (logged)."""
        key = (layout.name, guessed)
        if key in self._announced:
            return
        self._announced.add(key)
        target = self.spec.input.layout
        if guessed:
            log.info("input layout %s assumed from the joint count (%d joints), its bone "
                     "lengths checked; declare it with --layout %s", layout.name,
                     layout.num_joints, layout.name)
        if layout.name != target.name:
            log.warning("input joints are in layout %s (%d joints); mapping them by name to the "
                        "model's layout %s (%d joints)", layout.name, layout.num_joints,
                        target.name, target.num_joints)

    # -- the session --------------------------------------------------------------------------

    def run(self, batch: np.ndarray, *,
            decode: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """One session call: ``(B, T, D)`` float32 -> logits ``(B, C)``, decoded or ``None``.

        ``decoded`` ``(B, L, T, D)`` is computed only when ``decode`` is true. Rows may be
        non-finite (see :func:`finite_rows`); :meth:`predict` refuses those.
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        d = self.spec.input.D
        if batch.ndim != 3 or batch.shape[2] != d or batch.shape[1] < 1:
            raise ValueError(f"expected a batch (B, T, {d}), got {batch.shape}")
        if decode and not self.metadata.decoder_layers:
            raise ModelError(f"{self.model_path}: exported without a decoder head "
                             "(re-export with --decoder-layers)")
        names = ["logits", "decoded"] if decode else ["logits"]
        feed = {"skeleton": batch}
        if self._has_decode_input:  # skip the decoder head's work, not just its copy
            feed["decode"] = np.array(decode)
        outputs = self.session.run(names, feed)
        return outputs[0], (outputs[1] if decode else None)

    def predict(self, logits: np.ndarray, top_k: int = 5) -> list[list[Prediction]]:
        """Softmax over ``logits (B, C)``; the ``top_k`` most likely classes per row.

        Raises:
            NonFiniteScoresError: a row holds NaN or infinity (split such rows off first with
                :func:`finite_rows` to answer the others).
        """
        return rank(self.spec.classes, logits, top_k)

    def classify(self, sequences: Sequence[np.ndarray], *, top_k: int = 5,
                 batch_size: int = 64) -> list[list[Prediction]]:
        """Top-k predictions for each sequence ``(M, T, V, C)``, ``batch_size`` per session call.

        Raises:
            SkeletonFormatError: a sequence that cannot be prepared, or whose scores are not
                finite (use :meth:`classify_files` to answer the others).
        """
        inputs = [self.prepare(seq) for seq in sequences]
        results: list[list[Prediction]] = []
        for start in range(0, len(inputs), batch_size):
            logits, _ = self.run(np.stack(inputs[start:start + batch_size]))
            results.extend(self.predict(logits, top_k))
        return results

    def classify_files(self, paths: Iterable[str | os.PathLike[str]], *, top_k: int = 5,
                       batch_size: int = 64) -> Iterator[FileResult]:
        """Read, prepare and classify files in batches; yields one :class:`FileResult` per path.

        A file that cannot be read or prepared, or whose scores are not finite, yields a result
        with ``error`` set (a :class:`SkeletonFormatError`) and does not stop the others.
        """
        pending: list[tuple[Path, PreparedInput | None, Exception | None]] = []
        for path in paths:
            path = Path(path)
            try:
                kp = read_keypoints(path, layout=self.options.layout).masked()
                pending.append((path, self.prepare_input(kp.coords, source_layout=kp.layout,
                                                         source=path), None))
            except SkeletonFormatError as exc:
                pending.append((path, None, exc.named(path)))
            if sum(x is not None for _, x, _ in pending) == batch_size:
                yield from self._flush(pending, top_k)
                pending = []
        yield from self._flush(pending, top_k)

    def _flush(self, pending: list, top_k: int) -> Iterator[FileResult]:
        ready = [p.x for _, p, _ in pending if p is not None]
        logits = self.run(np.stack(ready))[0] if ready else np.zeros((0, 1), np.float32)
        ok = finite_rows(logits) if ready else np.zeros(0, bool)
        preds = iter(self.predict(logits[ok], top_k) if ok.any() else [])
        row = 0
        for path, prepared, error in pending:
            if prepared is None:
                yield FileResult(path, error=error)
                continue
            good, row = bool(ok[row]), row + 1
            yield (FileResult(path, next(preds), verdict=prepared.verdict) if good
                   else FileResult(path, error=NonFiniteScoresError(path)))
