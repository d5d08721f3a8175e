"""``restcn-infer decode``: what the model's layers see, as skeletons (the Feature Map Decoder).

    restcn-infer decode examples/nw_ucla_pick_up_with_one_hand.npy --out decoded.npz
    restcn-infer decode a.skeleton --layers 1,10 --out a.npz --render a.gif

Writes the ``.npz`` of :mod:`restcn_infer.decode` (input, decoded, layers, joint_names, bones,
classes, logits; no pickle) and optionally draws the input beside the decoded layers (the
paper's Figures 4-6): ``.gif`` animated, ``.png`` a strip of a few frames (needs the ``viz``
extra). Registered on the ``restcn-infer`` app in ``cli/infer.py``. Exit codes: 0 ok, 1 a
file/model error or matplotlib missing, 2 usage (including layers the model does not decode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import console, domain_errors, fail, parse_int_list, print_warning
from restcn_cli.runtime import (
    AcceptImplausibleOption,
    Device,
    DeviceOption,
    FlipYOption,
    LayoutOption,
    ModelOption,
    Units,
    UnitsOption,
    input_options,
    open_classifier,
)


def decode(
    file: Annotated[Path, typer.Argument(
        help="A skeleton file: NTU .skeleton, .npy (T,V,C)/(M,T,V,C), .json, one-sequence "
             ".pkl, pose-estimator output (MMPose, MediaPipe, OpenPose).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="The .npz to write (input, decoded, layers, joint_names, bones).")],
    model: ModelOption = None,
    layers: Annotated[Optional[str], typer.Option(
        help="Decoder layers to keep, e.g. 1,4,7,10 (default: all the model decodes).")] = None,
    render: Annotated[Optional[Path], typer.Option(
        help="Also draw input and decoded layers: OUT.gif (animated) or OUT.png (frame strip).")
    ] = None,
    device: DeviceOption = Device.auto,
    layout: LayoutOption = None,
    units: UnitsOption = Units.m,
    flip_y: FlipYOption = False,
    accept_implausible: AcceptImplausibleOption = False,
) -> None:
    """Decode FILE's hidden activations back into skeleton sequences, one per layer."""
    from restcn_infer.decode import decode_sequence, save_decoded
    from restcn_infer.errors import ModelError, SkeletonFormatError
    from restcn_infer.output_paths import check_output_file
    from restcn_infer.readers import read_keypoints

    wanted = parse_int_list(layers, "layer numbers")
    if render is not None and render.suffix.lower() not in (".gif", ".png"):
        raise typer.BadParameter(f"{render}: expected a .gif or .png file name",
                                 param_hint="--render")
    with domain_errors():  # before the model loads: no work is lost to a bad path
        check_output_file(out, what="--out", suffixes=(".npz",))
        if render is not None:
            check_output_file(render, what="--render")
    options = input_options(layout, units, flip_y, accept_implausible)
    clf = open_classifier(model, device, options=options)
    try:
        keypoints = read_keypoints(file, layout=options.layout).masked()
        sequence = keypoints.coords  # (M, T, V, C), masked by confidence
        result = decode_sequence(clf, sequence, layers=wanted, source_layout=keypoints.layout,
                                 source=file)
    except SkeletonFormatError as exc:
        fail(exc.named(file))
    except ModelError as exc:
        if wanted is None or not clf.metadata.decoder_layers:
            fail(exc)
        raise typer.BadParameter(str(exc), param_hint="--layers") from None
    if result.verdict is not None and result.verdict.accepted:
        print_warning(f"{file}: decoded although implausible: "
                      + "; ".join(result.verdict.problems))
    with domain_errors():
        save_decoded(result, out)
    console.print(f"{file}: predicted {result.predicted}; decoded layers "
                  f"{','.join(map(str, result.layers))} -> {out}", highlight=False)
    if render is not None:
        from restcn_infer.render import render_decode_result

        with domain_errors():  # the report's style: display scale, colours, frame numbers
            spec = clf.spec
            render_decode_result(result, render, mean=spec.mean_array, sequence=sequence,
                                 name=file.name, policy=spec.input.policy,
                                 highlight=spec.target_joints,
                                 y_down=clf.checker.envelope.y_down)
        console.print(f"drawn -> {render}", highlight=False)
