"""The grader's wire format: length-prefixed JSON frames, with tensors as typed bytes.

Both sides use it: the grader (``sandbox``, ``remote``) and the submission's process inside the
sandbox (``child``, which imports this file by path, not as part of ``tutorial_lib``). JSON has no
shared references, so the size of a frame bounds the work of reading it; :func:`decode` also
bounds the depth. Every JSON object is tagged by its single key::

    {"dict": {...}}  {"tuple": [...]}  {"tensor": [dtype, shape, base64]}  {"ndarray": [...]}
    {"size": [...]}  {"dtype": "float32"}  {"opaque": "TypeName"}

Anything else in a frame is a protocol error (the sender is broken or hostile).
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from typing import Any

HEADER = struct.Struct("<Q")
MAX_DEPTH = 32
_DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "bool",
)


class WireError(ValueError):
    """A frame that is not a well-formed grader message."""


def send(fd: int, value: Any) -> None:
    """Encode ``value`` and write it to ``fd`` as one frame."""
    data = json.dumps(encode(value), allow_nan=True, separators=(",", ":")).encode()
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def encode(value: Any, depth: int = 0) -> Any:
    import sys

    if depth > MAX_DEPTH:
        return {"opaque": "a structure nested too deeply"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else {"opaque": "int beyond 64 bits"}
    if isinstance(value, float):
        return value
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return {"tensor": _tensor(torch, value)}
        if isinstance(value, torch.Size):
            return {"size": [int(v) for v in value]}
        if isinstance(value, torch.dtype):
            return {"dtype": str(value).rpartition(".")[2]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: encode(v, depth + 1) for k, v in value.items()}}
    numpy = sys.modules.get("numpy")
    if numpy is not None and torch is not None:
        if isinstance(value, numpy.ndarray) and value.dtype.kind in "biuf":
            return {
                "ndarray": _tensor(
                    torch, torch.from_numpy(numpy.ascontiguousarray(value))
                )
            }
        if isinstance(value, numpy.generic):
            return encode(value.item(), depth + 1)
    return {"opaque": type(value).__name__[:80]}


def _tensor(torch: Any, value: Any) -> list:
    # a plain tensor, even from a subclass
    t = value.detach().cpu().as_subclass(torch.Tensor).contiguous()
    dtype = str(t.dtype).rpartition(".")[2]
    if dtype not in _DTYPES:
        raise WireError(f"expected a tensor of a plain dtype, got {dtype}")
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return [dtype, list(t.shape), base64.b64encode(raw).decode()]


def decode(data: bytes) -> Any:
    """The value of one frame's body; ``WireError`` for anything but the tagged format above."""
    try:
        return _decode(json.loads(data), 0)
    except WireError:
        raise
    except (ValueError, RecursionError, TypeError) as err:
        raise WireError(
            f"expected a grader message, got an unreadable frame ({type(err).__name__})"
        ) from None


def _decode(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise WireError(f"expected at most {MAX_DEPTH} levels of nesting, got more")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_decode(v, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        raise WireError("expected a tagged object, got an untagged one")
    ((tag, body),) = value.items()
    if tag == "dict" and isinstance(body, dict):
        return {str(k): _decode(v, depth + 1) for k, v in body.items()}
    if tag == "tuple" and isinstance(body, list):
        return tuple(_decode(v, depth + 1) for v in body)
    if tag in {"tensor", "ndarray"}:
        t = _to_tensor(body)
        return t.numpy() if tag == "ndarray" else t
    if (
        tag == "size"
        and isinstance(body, list)
        and all(isinstance(v, int) for v in body)
    ):
        import torch

        return torch.Size(body)
    if tag == "dtype" and body in _DTYPES:
        import torch

        return getattr(torch, body)
    if tag == "opaque" and isinstance(body, str):
        return Opaque(body)
    raise WireError(f"expected a known tag, got {tag!r}")


def _to_tensor(body: Any) -> Any:
    import torch

    if not (
        isinstance(body, list)
        and len(body) == 3
        and body[0] in _DTYPES
        and isinstance(body[1], list)
        and all(isinstance(v, int) and v >= 0 for v in body[1])
        and isinstance(body[2], str)
    ):
        raise WireError("expected a tensor as [dtype, shape, base64]")
    dtype, shape = getattr(torch, body[0]), body[1]
    raw = base64.b64decode(body[2], validate=True)
    size = torch.empty((), dtype=dtype).element_size() * math.prod(shape)
    if size != len(raw):
        raise WireError(
            f"expected {size} bytes for a {body[0]} tensor of shape {shape}, got {len(raw)}"
        )
    if not raw:
        return torch.zeros(shape, dtype=dtype)
    return (
        torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        .view(dtype)
        .reshape(shape)
        .clone()
    )


class Opaque:
    """Something the submission returned that is not a tensor, number, string or container."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{json.dumps(self.type_name)} object>"  # quoted: the submission chose the name
