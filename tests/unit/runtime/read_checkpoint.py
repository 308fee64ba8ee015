#!/usr/bin/env python3
"""Reads a sparsec checkpoint the way other tools would, independently of
the runtime: a minimal safetensors reader (json + struct only) that also
enforces the format's rules (header size, 8-byte aligned data start,
contiguous non-overlapping tensors covering the data section, metadata of
strings), then, when installed, the `safetensors` package (numpy API) and
torch (sparse CSR tensors from NAME.crow_indices / col_indices / values).

Prints one line per tensor: "NAME DTYPE SHAPE SUM", then "metadata K=V"
lines and which optional readers ran. Exits non-zero on any violation.
Usage: read_checkpoint.py FILE
"""
import json
import struct
import sys
import warnings
import zlib

SIZES = {"F32": 4, "F64": 8, "I32": 4, "I64": 8, "U8": 1, "BOOL": 1}
FORMATS = {"F32": "f", "F64": "d", "I32": "i", "I64": "q", "U8": "B", "BOOL": "?"}


def fail(msg):
    print("error: " + msg)
    sys.exit(1)


def read_minimal(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail("file shorter than 8 bytes")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        fail("header length beyond the file")
    if (8 + hlen) % 8 != 0:
        fail("data section not 8-byte aligned")
    header = json.loads(blob[8 : 8 + hlen].decode("utf-8"))
    data = blob[8 + hlen :]
    meta = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        fail("metadata values must be strings")
    spans = []
    tensors = {}
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            fail("tensor %s has keys %s" % (name, sorted(info)))
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * SIZES[dtype]:
            fail("tensor %s has %d bytes, shape needs %d" % (name, end - begin, count * SIZES[dtype]))
        spans.append((begin, end, name))
        values = struct.unpack("<%d%s" % (count, FORMATS[dtype]), data[begin:end])
        tensors[name] = (dtype, shape, values)
    # The safetensors library requires the tensors to tile the data section.
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            fail("tensor %s starts at %d, expected %d (hole or overlap)" % (name, begin, at))
        at = end
    if at != len(data):
        fail("data section has %d bytes, tensors cover %d" % (len(data), at))
    if "crc32" in meta and int(meta["crc32"], 16) != zlib.crc32(data):
        fail("crc32 mismatch")
    return meta, tensors


def main():
    path = sys.argv[1]
    meta, tensors = read_minimal(path)
    for name in sorted(tensors):
        dtype, shape, values = tensors[name]
        print("%s %s %s %.6g" % (name, dtype, "x".join(map(str, shape)) or "scalar", sum(values)))
    for k in sorted(meta):
        print("metadata %s=%s" % (k, meta[k]))
    try:
        from safetensors.numpy import load_file  # noqa: PLC0415
    except ImportError:
        print("reader safetensors: not installed")
    else:
        loaded = load_file(path)
        if sorted(loaded) != sorted(tensors):
            fail("safetensors sees tensors %s" % sorted(loaded))
        for name, arr in loaded.items():
            if list(arr.shape) != tensors[name][1]:
                fail("safetensors shape of %s: %s" % (name, arr.shape))
            if abs(float(arr.astype("float64").sum()) - sum(tensors[name][2])) > 1e-3:
                fail("safetensors values of %s differ" % name)
        print("reader safetensors: ok")
    try:
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support.*")
        import torch  # noqa: PLC0415
    except ImportError:
        print("reader torch: not installed")
        return
    for name in sorted(tensors):
        if not name.endswith(".crow_indices") or name.startswith("optimizer."):
            continue
        base = name[: -len(".crow_indices")]
        crow = torch.tensor(tensors[name][2], dtype=torch.int32)
        col = torch.tensor(tensors[base + ".col_indices"][2], dtype=torch.int32)
        val = torch.tensor(tensors[base + ".values"][2], dtype=torch.float32)
        if base + ".size" not in meta:
            fail("metadata has no %s.size" % base)
        size = tuple(json.loads(meta[base + ".size"]))
        if size[0] != len(crow) - 1:
            fail("%s.size %s disagrees with crow_indices" % (base, size))
        sp = torch.sparse_csr_tensor(crow, col, val, size=size)
        dense = sp.to_dense()
        if abs(float(dense.sum()) - float(val.sum())) > 1e-3 or sp._nnz() != len(val):
            fail("torch CSR of %s disagrees" % base)
        print("torch csr %s nnz=%d" % (base, sp._nnz()))
    print("reader torch: ok")


if __name__ == "__main__":
    main()
