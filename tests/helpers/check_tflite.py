#!/usr/bin/python3
"""check_tflite: run minnow's TFLite files with Arm NN and compare them with LibTorch's outputs.

usage: check_tflite.py [--atol A] [--min-agreement F] [--max-rel-error E] DIR...

Each DIR holds model.tflite, input.npy (N x C x H x W float32, the normalised input) and
expected.npy (N x classes, LibTorch's logits), as tests/helpers/export_sample writes them. Every
model is parsed by Arm NN's TfLite parser (Debian's python3-pyarmnn) and run image by image on the
CpuRef backend, a runtime minnow did not write.

float32 models (float32 input tensor): every logit within A x max(1, max |expected|) of LibTorch's
(A = 1e-4: absolute for logits up to 1, relative beyond).
int8 models: the input is quantised with the input tensor's scale and zero point as Arm NN reads
them, the output dequantised the same way; the report gives each model's top-1 agreement with
LibTorch and its largest error relative to the logits' range. The check fails when the agreement
over all images of all int8 models is below F, or when a model's relative error is above E.

Exit status: 0 all pass, 1 a check failed (or Arm NN lacks its CpuRef backend), 2 bad usage,
77 pyarmnn is not installed.
"""
import argparse
import contextlib
import io
import os
import sys

try:
    import numpy as np
    with contextlib.redirect_stdout(io.StringIO()):   # pyarmnn prints which parsers it lacks
        import pyarmnn as ann
except ImportError as e:  # the test skips itself
    print(f"check_tflite: {e}", file=sys.stderr)
    sys.exit(77)


class Model:
    """A parsed and loaded TFLite file, its input and output binding information."""

    def __init__(self, path):
        self.parser = ann.ITfLiteParser()
        network = self.parser.CreateNetworkFromBinaryFile(path)
        self.input = self.parser.GetNetworkInputBindingInfo(0, self.parser.GetSubgraphInputTensorNames(0)[0])
        self.output = self.parser.GetNetworkOutputBindingInfo(0, self.parser.GetSubgraphOutputTensorNames(0)[0])
        self.runtime = ann.IRuntime(ann.CreationOptions())
        optimized, messages = ann.Optimize(network, [ann.BackendId("CpuRef")], self.runtime.GetDeviceSpec(),
                                           ann.OptimizerOptions())
        self.net_id, _ = self.runtime.LoadNetwork(optimized)

    def quantized(self):
        return self.input[1].GetDataType() in (ann.DataType_QAsymmS8, ann.DataType_QSymmS8)

    def run(self, image):
        """Logits (float) for one C x H x W image."""
        x = np.ascontiguousarray(np.transpose(image, (1, 2, 0))[np.newaxis])
        info = self.input[1]
        if self.quantized():
            q = np.round(x / info.GetQuantizationScale()) + info.GetQuantizationOffset()
            x = np.clip(q, -128, 127).astype(np.int8)
        else:
            x = x.astype(np.float32)
        inputs = ann.make_input_tensors([self.input], [x])
        outputs = ann.make_output_tensors([self.output])
        self.runtime.EnqueueWorkload(self.net_id, inputs, outputs)
        y = ann.workload_tensors_to_ndarray(outputs)[0].reshape(-1)
        out = self.output[1]
        if out.IsQuantized():
            y = (y.astype(np.float64) - out.GetQuantizationOffset()) * out.GetQuantizationScale()
        return y.astype(np.float64)


def check(directory, args):
    """(passed, int8 agreeing images, int8 images) for one exported model; prints one line."""
    model = Model(os.path.join(directory, "model.tflite"))
    images = np.load(os.path.join(directory, "input.npy"))
    expected = np.load(os.path.join(directory, "expected.npy")).astype(np.float64)
    got = np.stack([model.run(img) for img in images])
    if got.shape != expected.shape:
        print(f"{directory}\tFAIL\toutput shape {got.shape}, expected {expected.shape}")
        return False, 0, 0
    err = float(np.max(np.abs(got - expected)))
    scale = float(max(1.0, np.max(np.abs(expected))))
    if not model.quantized():
        ok = err <= args.atol * scale
        print(f"{directory}\tfloat32\tmax_abs_error={err:.3g}\tbound={args.atol * scale:.3g}\t{'ok' if ok else 'FAIL'}")
        return ok, 0, 0
    agree = int(np.sum(np.argmax(got, axis=1) == np.argmax(expected, axis=1)))
    span = float(np.max(expected) - np.min(expected)) or 1.0
    rel = err / span
    ok = rel <= args.max_rel_error
    print(f"{directory}\tint8\ttop1_agreement={agree}/{len(images)}\tmax_abs_error={err:.3g}"
          f"\trelative_to_range={rel:.3f}\t{'ok' if ok else 'FAIL'}")
    return ok, agree, len(images)


def cpuref_present():
    """Whether Arm NN's CpuRef backend is loadable (Debian ships it apart: libarmnn-cpuref-backend22)."""
    runtime = ann.IRuntime(ann.CreationOptions())
    return "CpuRef" in [str(b) for b in runtime.GetDeviceSpec().GetSupportedBackends()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--min-agreement", type=float, default=0.9)
    p.add_argument("--max-rel-error", type=float, default=0.25)
    p.add_argument("dirs", nargs="+")
    args = p.parse_args()
    if not cpuref_present():
        print("check_tflite: Arm NN has no CpuRef backend (install libarmnn-cpuref-backend22)", file=sys.stderr)
        return 1
    passed, agree, total = True, 0, 0
    for d in args.dirs:
        try:
            ok, a, n = check(d, args)
        except Exception as e:  # a parser or runtime refusal is a failed check, reported per model
            print(f"{d}\tFAIL\t{type(e).__name__}: {e}")
            ok, a, n = False, 0, 0
        passed, agree, total = passed and ok, agree + a, total + n
    if total:
        frac = agree / total
        ok = frac >= args.min_agreement
        print(f"int8 top-1 agreement {agree}/{total} = {frac:.3f} (minimum {args.min_agreement}): {'ok' if ok else 'FAIL'}")
        passed = passed and ok
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
