#!/usr/bin/python3
"""Reads a stylegrad snapshot with PyTorch and checks names, shapes, dtypes and values.

usage: read_snapshot.py SNAPSHOT EXPECTED_JSON
EXPECTED_JSON maps tensor names to shapes. The safetensors file is parsed by hand (the
format is an 8-byte little-endian header length, a JSON header and raw data) and every
tensor is materialised with torch.frombuffer, as a PyTorch user without the safetensors
package would.
"""
import json
import struct
import sys

try:
    import torch
except ImportError:
    sys.exit("read_snapshot.py: python3-torch is required")

DTYPES = {"F32": torch.float32, "F64": torch.float64}


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    meta = header.pop("__metadata__", {})
    expected = json.load(open(expected_path))
    errors = []
    if set(header) != set(expected):
        errors.append(f"names differ: missing {sorted(set(expected) - set(header))[:5]}, "
                      f"unexpected {sorted(set(header) - set(expected))[:5]}")
    for name, info in header.items():
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        if name in expected and list(t.shape) != expected[name]:
            errors.append(f"{name}: shape {list(t.shape)} != {expected[name]}")
        if not torch.isfinite(t).all():
            errors.append(f"{name}: non-finite values")
    for key in ("cfg", "resolution", "img_channels"):
        if key not in meta:
            errors.append(f"metadata lacks {key}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(f"read_snapshot.py: {len(header)} tensors OK ({meta.get('cfg')}, {meta.get('resolution')}px)")


if __name__ == "__main__":
    main()
