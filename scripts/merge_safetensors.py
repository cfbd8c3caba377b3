#!/usr/bin/env python3
"""Overlays a delta safetensors file on a base one: `merge_safetensors.py BASE DELTA OUT`.

Every tensor of BASE is written to OUT in BASE's order, name, dtype and shape; those also in DELTA take DELTA's
values, converted to BASE's dtype (the fine-tuned layers are shipped in fp16, the encoder is fp32). A tensor in
DELTA that BASE lacks, or whose shape differs, is an error: a delta for another model must not half-apply.
OUT is written to a temporary file and renamed over, so OUT may be a symlink to BASE without BASE being touched.

Standard library only: scripts/libtorch.sh runs it with the system python3, before any venv exists.
"""
import json
import os
import struct
import sys
from array import array

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
# struct codes of the float types this converts between; bf16 is not used by the model.
CODES = {"F32": "f", "F16": "e", "F64": "d"}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None)
    return header, meta, data


def convert(raw, src, dst):
    if src == dst:
        return raw
    if src not in CODES or dst not in CODES:
        raise SystemExit(f"cannot convert {src} to {dst}")
    out = array("d" if dst == "F64" else "f")
    step = 1 << 20  # elements per chunk: bounds the temporary Python floats
    width = SIZES[src]
    for i in range(0, len(raw), step * width):
        chunk = raw[i : i + step * width]
        out.extend(struct.unpack(f"<{len(chunk) // width}{CODES[src]}", chunk))
    if dst == "F16":
        return struct.pack(f"<{len(out)}e", *out)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    base_path, delta_path, out_path = sys.argv[1:]
    base, meta, base_data = read(base_path)
    delta, _, delta_data = read(delta_path)
    for name, d in delta.items():
        if name not in base:
            raise SystemExit(f"{delta_path}: tensor {name} is not in {base_path}")
        if d["shape"] != base[name]["shape"]:
            raise SystemExit(f"{delta_path}: {name} has shape {d['shape']}, {base_path} has {base[name]['shape']}")
    names = sorted(base, key=lambda k: base[k]["data_offsets"][0])
    header, chunks, offset = {}, [], 0
    for name in names:
        b = base[name]
        if name in delta:
            d = delta[name]
            raw = convert(delta_data[d["data_offsets"][0] : d["data_offsets"][1]], d["dtype"], b["dtype"])
        else:
            raw = base_data[b["data_offsets"][0] : b["data_offsets"][1]]
        header[name] = {"dtype": b["dtype"], "shape": b["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if meta is not None:
        header = {"__metadata__": meta, **header}
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the format's alignment of the data section
    tmp = f"{out_path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for c in chunks:
            f.write(c)
    os.replace(tmp, out_path)
    print(f"merge_safetensors: {len(delta)} of {len(base)} tensors from {delta_path} -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
