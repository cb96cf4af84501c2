"""Reading a ``torch.save`` file without torch: plain data, and tensors as numpy arrays.

``torch.save`` (since torch 1.6) writes a zip: ``<name>/data.pkl`` pickles the object, and each
tensor's storage is a raw little-endian file ``<name>/data/<key>`` that the pickle names by a
persistent id ``("storage", <torch.XStorage>, key, location, numel)``; a tensor is rebuilt by
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``.

The unpickler here knows only those names, and answers each with a harmless stand-in of its own:
storages become numpy dtypes, ``_rebuild_tensor_v2`` a strided view copied into an array,
``collections.OrderedDict`` itself. Any other name in the pickle (a class, a function, anything that
could run code) is refused before anything is built, so reading a file can never run code, the same
guarantee as ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crowdwatch.errors import CheckpointError

__all__ = ["UNSAFE_MESSAGE", "read_torch_file"]

#: The pickle of a checkpoint is metadata and names: a few MB at most. A larger one is refused unread.
MAX_PICKLE_BYTES = 64 << 20
UNSAFE_MESSAGE = (
    "holds Python objects other than tensors and plain data; refusing to load it "
    "(a checkpoint must never be able to run code)"
)

#: torch's storage classes (as ``torch.save`` names them) -> the numpy dtype of their bytes.
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # no numpy bfloat16: read as bits, widened in _rebuild_tensor
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _StorageType:
    """What the unpickler hands back for ``torch.XStorage``: the name and the dtype of its bytes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """One storage: its bytes as a flat array, and whether they are bfloat16 bits."""

    def __init__(self, values: np.ndarray, bfloat16: bool) -> None:
        self.values = values
        self.bfloat16 = bfloat16


class _Refused(pickle.UnpicklingError):
    """The pickle names something other than tensors, storages and plain data."""


class _Corrupt(Exception):
    """The file's structure is inconsistent (turned into a CheckpointError by the reader)."""


def _rebuild_tensor(
    storage: _Storage,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    _requires_grad: bool = False,
    _hooks: object = None,
    _metadata: object = None,
) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2``'s stand-in: the tensor as a fresh numpy array (bfloat16 as
    float32, every other dtype as stored)."""
    if not isinstance(storage, _Storage):
        raise _Corrupt("a tensor without a storage")
    if not all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride)) or len(size) != len(stride):
        raise _Corrupt(f"a tensor with an invalid layout (size {size}, stride {stride}, offset {offset})")
    values = storage.values
    count = int(np.prod(size, dtype=np.int64))
    if count:  # every element the view reaches lies inside the storage
        last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= values.size:
            raise _Corrupt(f"a tensor reaches element {last} of a storage of {values.size}")
    itemsize = values.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        values[offset:] if count else values[:0],
        shape=size,
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    array = np.array(view, dtype=values.dtype.newbyteorder("="), copy=True)
    if storage.bfloat16:  # bfloat16 is the upper half of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storage: Callable[[_StorageType, str, int], _Storage]) -> None:
        super().__init__(io.BytesIO(data))
        self._storage = storage

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise _Refused(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Refused(f"persistent id {str(pid)[:60]}")
        _, storage_type, key, _location, numel = pid
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or not isinstance(numel, int)
        ):
            raise _Refused("persistent id of unknown form")
        return self._storage(storage_type, key, numel)


def _archive_prefix(names: list[str]) -> str:
    """The folder ``torch.save`` put everything in (the file's stem at save time, e.g. ``archive/``)."""
    found = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(found) != 1:
        raise _Corrupt("no data.pkl in the archive: not a torch.save file")
    return found[0].removesuffix("data.pkl")


def read_torch_file(path: str | Path) -> Any:
    """What ``torch.load(path, weights_only=True)`` returns, with numpy arrays for tensors.

    Raises:
        CheckpointError: missing, empty, truncated or corrupt file (reason ``missing``/``corrupt``),
            torch's legacy (pre-1.6, not zip) format included; a pickle naming anything but tensors,
            storages and ``OrderedDict`` (``unsafe``). The messages are the torch loader's.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file", reason="missing")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "is empty (0 bytes)", reason="corrupt")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            legacy = f.read(1) == b"\x80"  # a bare pickle: torch's format before 1.6, or garbage
        reason = (
            "or in torch's legacy format (before 1.6), which only the torch backend reads"
            if legacy
            else "and cannot be read (not a torch.save zip file)"
        )
        raise CheckpointError(path, f"is truncated or corrupt, {reason}", reason="corrupt")
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = _archive_prefix(archive.namelist())
            info = archive.getinfo(prefix + "data.pkl")
            if info.file_size > MAX_PICKLE_BYTES:
                raise _Corrupt(f"its data.pkl is {info.file_size:,} bytes, over {MAX_PICKLE_BYTES:,}")
            data = archive.read(info)
            byteorder = prefix + "byteorder"
            if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
                raise _Corrupt("big-endian tensors are not supported")
            cache: dict[str, _Storage] = {}

            def storage(kind: _StorageType, key: str, numel: int) -> _Storage:
                if key not in cache:
                    raw = archive.read(f"{prefix}data/{key}")
                    if len(raw) < numel * kind.dtype.itemsize:
                        raise _Corrupt(f"storage {key} holds {len(raw)} bytes, fewer than {numel} elements")
                    values = np.frombuffer(raw, dtype=kind.dtype, count=numel)
                    cache[key] = _Storage(values, bfloat16=kind.name == "BFloat16Storage")
                return cache[key]

            return _RestrictedUnpickler(data, storage).load()
    except _Refused:
        raise CheckpointError(path, UNSAFE_MESSAGE, reason="unsafe") from None
    except CheckpointError:
        raise
    except Exception as exc:  # a bad zip or pickle fails in many ways; none of them runs code
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            path, f"is truncated or corrupt and cannot be read ({first})", reason="corrupt"
        ) from None
