#!/usr/bin/env python3
"""Converts the FID Inception-v3 weights to the safetensors file stylegrad reads.

    python3 scripts/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception-fid.safetensors

INPUT is a PyTorch state dict of the FID Inception network (pytorch-fid's
pt_inception-2015-12-05-6726825d.pth: TensorFlow's inception-2015-12-05 graph ported to
PyTorch, the network FID is defined with). You supply it; nothing is downloaded.

Every conv + batch-norm pair ("<name>.conv.weight" with "<name>.bn.{weight,bias,running_mean,
running_var}", eps 0.001) is folded into one conv with a bias, computed in float64:
    scale = gamma / sqrt(running_var + eps)
    <name>.weight = conv.weight * scale[:, None, None, None]
    <name>.bias   = beta - running_mean * scale
and written as float32. The classifier (fc.*) and num_batches_tracked are left out: FID
uses the 2048 pool3 features. Needs only PyTorch (Debian's python3-torch); the safetensors
file is written by hand (8-byte header length, JSON header, raw little-endian data).
docs/metrics.md says how the file is used (stylegan2-metrics --inception FILE).
"""
import json
import os
import struct
import sys

import torch

BN_EPS = 0.001  # torchvision's BasicConv2d, which the FID network is built from
FORMAT = "stylegrad-fid-inception-v3"
NUM_CONVS = 94  # conv + batch-norm layers of Inception-v3 without its auxiliary classifier


def save_safetensors(path, tensors, metadata=None):
    """Writes a safetensors file by hand: 8-byte little-endian header length, JSON header
    padded with spaces to a multiple of 8, raw little-endian data. tensors: name -> float32 /
    float64 tensor, written in the given order; metadata: str -> str (optional). Written to
    path + ".tmp", synced, then renamed. Also the writer of the PyTorch oracle's fixtures
    (tests/oracle/make_fixtures.py, tests/oracle/inception_reference.py)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().to("cpu").contiguous()
        kinds = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8")}
        if t.dtype not in kinds:
            raise TypeError(f"{path}: tensor {name}: unsupported dtype {t.dtype}")
        code, npdt = kinds[t.dtype]
        raw = t.numpy().astype(npdt, copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def fold(state):
    """The folded conv weights and biases, by layer name, in the state dict's order."""
    out = {}
    convs = [k[: -len(".conv.weight")] for k in state if k.endswith(".conv.weight")]
    for name in convs:
        w = state[name + ".conv.weight"].to(torch.float64)
        try:
            gamma, beta, mean, var = (
                state[f"{name}.bn.{p}"].to(torch.float64) for p in ("weight", "bias", "running_mean", "running_var")
            )
        except KeyError as e:
            raise SystemExit(f"convert_inception: '{name}' has a conv but no batch norm ({e.args[0]} missing)")
        scale = gamma / torch.sqrt(var + BN_EPS)
        out[name + ".weight"] = (w * scale[:, None, None, None]).to(torch.float32)
        out[name + ".bias"] = (beta - mean * scale).to(torch.float32)
    return out


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    src, dst = argv[1], argv[2]
    state = torch.load(src, map_location="cpu")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SystemExit(f"convert_inception: {src} is not a PyTorch state dict (name -> tensor)")
    tensors = fold(state)
    n = len(tensors) // 2
    if n != NUM_CONVS or "Mixed_7c.branch_pool.weight" not in tensors:
        raise SystemExit(
            f"convert_inception: {src} has {n} conv + batch-norm layers, expected the {NUM_CONVS} of the FID "
            "Inception-v3 (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)"
        )
    save_safetensors(dst, tensors, {"format": FORMAT, "source": os.path.basename(src), "bn_eps": BN_EPS})
    print(f"convert_inception: {n} layers (batch norm folded) from {src} -> {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
