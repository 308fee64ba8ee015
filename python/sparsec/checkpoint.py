"""sparsec checkpoints: safetensors files with sparsec's names and metadata.

Pure Python (json, struct, zlib and numpy): reading or writing a checkpoint
needs neither the model library nor the ``safetensors`` package, and files
written by either side are read by the other (see docs/runtime.md,
"Checkpoint format").

Layout, per parameter ``NAME`` in declaration order:

========================  =====  ===================================
tensor                    dtype  content
========================  =====  ===================================
``NAME``                  F32    dense and embedding values
``NAME.crow_indices``     I32    CSR row positions, [rows + 1]
``NAME.col_indices``      I32    CSR column indices, [nnz]
``NAME.values``           F32    CSR values, [nnz]
``optimizer.NAME.*``      F32/U8 optimizer state (optional)
========================  =====  ===================================

``__metadata__`` (strings): ``format`` = ``"sparsec"``, ``model``, ``abi``,
``step``, ``lr``, ``crc32`` (zlib CRC32 of the whole data section, 8 hex
digits) and ``NAME.size`` = ``"[rows,cols]"`` per CSR parameter.

The CRC makes a checkpoint written by another safetensors writer
(``safetensors.torch.save_file``) loadable once its ``crc32`` is right:
write it with a placeholder, then call :func:`fix_crc32` (or compute
:func:`data_crc32` and save again; the data section does not depend on the
metadata).
"""
import json
import os
import struct
import tempfile
import zlib
from typing import Dict, Tuple

import numpy as np

_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
_NP_TO_ST = {np.dtype(v): k for k, v in _ST_DTYPES.items()}

CRC_PLACEHOLDER = "00000000"


def _read_header(f):
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError("not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw)
    hdr = f.read(n)
    if len(hdr) != n:
        raise ValueError("truncated safetensors header")
    return n, json.loads(hdr.decode("utf-8"))


def read(path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """Reads a safetensors file: ({name: array}, metadata)."""
    with open(path, "rb") as f:
        n, header = _read_header(f)
        data = f.read()
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, e in header.items():
        dt = np.dtype(_ST_DTYPES[e["dtype"]]).newbyteorder("<")
        a, b = e["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dt).reshape(e["shape"])
        tensors[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return tensors, dict(meta)


def read_metadata(path) -> Dict[str, str]:
    with open(path, "rb") as f:
        _, header = _read_header(f)
    return dict(header.get("__metadata__", {}) or {})


def data_crc32(path) -> str:
    """The CRC32 of a safetensors file's data section, as sparsec writes it."""
    with open(path, "rb") as f:
        n, _ = _read_header(f)
        f.seek(8 + n)
        crc = 0
        for chunk in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(chunk, crc)
    return "%08x" % (crc & 0xFFFFFFFF)


def fix_crc32(path):
    """Rewrites the ``crc32`` metadata of `path` in place to match its data.

    The file must already hold a ``crc32`` entry of 8 hex digits (e.g. the
    :data:`CRC_PLACEHOLDER`), so the header keeps its length.
    """
    crc = data_crc32(path)
    with open(path, "r+b") as f:
        n, header = _read_header(f)
        old = (header.get("__metadata__") or {}).get("crc32")
        if old is None or len(old) != 8:
            raise ValueError("%s has no 8-digit crc32 metadata to fix" % path)
        f.seek(8)
        text = f.read(n)
        key = b'"crc32":'
        i = text.find(key)
        j = text.find(b'"', i + len(key))
        if i < 0 or text[j + 1:j + 9] != old.encode():
            raise ValueError("cannot locate the crc32 value in %s" % path)
        f.seek(8 + j + 1)
        f.write(crc.encode())
    return crc


def write(path, tensors, metadata):
    """Writes a safetensors file the way sparsec does (atomic rename).

    `tensors` is an ordered mapping name -> numpy array; `metadata` a mapping
    of strings. ``crc32`` is computed here (any given value is replaced).
    F32/I32 tensors are laid out before 1-byte ones so every tensor is
    aligned to its element size.
    """
    items = [(k, np.ascontiguousarray(v)) for k, v in tensors.items()]
    items.sort(key=lambda kv: -kv[1].dtype.itemsize)  # stable
    header, offset, blobs = {}, 0, []
    for name, arr in items:
        if arr.dtype not in _NP_TO_ST:
            raise ValueError("tensor '%s' has unsupported dtype %s" % (name, arr.dtype))
        b = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _NP_TO_ST[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    crc = 0
    for b in blobs:
        crc = zlib.crc32(b, crc)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta["crc32"] = "%08x" % (crc & 0xFFFFFFFF)
    header = {"__metadata__": meta, **header}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-(8 + len(text))) % 8)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def csr_size(metadata, name):
    """The dense shape of CSR parameter `name` from the metadata."""
    return tuple(json.loads(metadata[name + ".size"]))
