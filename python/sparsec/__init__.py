"""Python bindings for sparsec model libraries (ctypes + numpy).

    import sparsec
    so = sparsec.compile("mlp.sdl", "build")        # runs the sparsec compiler
    m = sparsec.load(so)                             # reads build/libmlp.h too
    loss = m.train_step(x, y)                        # numpy arrays, no copies
    logits = m.forward(x)
    w = m.param("fc2.weight")                        # zero-copy view
    m.save("ckpt.safetensors")                       # safetensors checkpoint
    sd = m.to_state_dict()                           # torch tensors (CSR too)

Pure Python; needs numpy, and torch only for to_state_dict/load_state_dict
with torch tensors. See docs/tutorial.md and python/README.md.
"""
from . import checkpoint
from ._header import BATCH, HeaderError, InputSpec, ModelSpec, ParamSpec, parse_header
from .compiler import CompileError, compile, find_sparsec
from .model import Model, ParamInfo, SparsecError, load

__version__ = "0.1.0"

__all__ = [
    "BATCH", "CompileError", "HeaderError", "InputSpec", "Model", "ModelSpec",
    "ParamInfo", "ParamSpec", "SparsecError", "checkpoint", "compile", "find_sparsec",
    "load", "parse_header",
]
