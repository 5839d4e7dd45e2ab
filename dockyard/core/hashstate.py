"""Digests whose running state can be saved and restored: a chunked upload's hash
continues on whichever node receives the next chunk.

hashlib's objects cannot be serialized, so this drives OpenSSL's SHA-2 functions
(the same C code hashlib uses, GIL released during each call) through ctypes and
saves their context structure, which is plain data. Where libcrypto cannot be
loaded, ``resumable`` returns None and callers fall back to re-reading the bytes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct

# name -> (context size, block size, offset of the `num` field, digest size)
# SHA256_CTX: h[8], Nl, Nh (uint32), data[16] (uint32), num, md_len (unsigned int)
# SHA512_CTX: h[8], Nl, Nh (uint64), u.d[16] (uint64), num, md_len (unsigned int)
_LAYOUTS = {
    "sha256": (112, 64, 104, 32),
    "sha512": (216, 128, 208, 64),
}
_VERSION = 1


def _load() -> ctypes.CDLL | None:
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for prefix in ("SHA256", "SHA512"):
                for suffix, args in (("_Init", [ctypes.c_void_p]),
                                     ("_Update", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
                                     ("_Final", [ctypes.c_char_p, ctypes.c_void_p])):
                    function = getattr(lib, prefix + suffix)
                    function.argtypes = args
                    function.restype = ctypes.c_int
            return lib
        except (OSError, AttributeError):
            continue
    return None


_lib = _load()


class ResumableHash:
    """A SHA-2 hash with ``update``/``hexdigest`` like hashlib's, plus ``state()``."""

    __slots__ = ("name", "_ctx", "_update", "_final", "_layout")

    def __init__(self, name: str, state: bytes | None = None) -> None:
        assert _lib is not None
        self.name = name
        self._layout = _LAYOUTS[name]
        prefix = name.upper()
        self._update = getattr(_lib, prefix + "_Update")
        self._final = getattr(_lib, prefix + "_Final")
        self._ctx = ctypes.create_string_buffer(self._layout[0])
        if state is None:
            getattr(_lib, prefix + "_Init")(self._ctx)
        else:
            self._restore(state)

    def update(self, data: bytes) -> None:
        if data:
            self._update(self._ctx, bytes(data) if not isinstance(data, bytes) else data, len(data))

    def hexdigest(self) -> str:
        copy = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(self._layout[3])
        self._final(out, copy)
        return out.raw.hex()

    def state(self) -> bytes:
        return bytes([_VERSION]) + self.name.encode().ljust(8, b"\0") + self._ctx.raw

    def _restore(self, state: bytes) -> None:
        size, block, num_offset, digest_size = self._layout
        if len(state) != 9 + size or state[0] != _VERSION or state[1:9].rstrip(b"\0") != self.name.encode():
            raise ValueError("not a saved state of this hash")
        raw = state[9:]
        # OpenSSL trusts these fields as indexes and lengths: refuse anything out of range.
        (num,) = struct.unpack_from("=I", raw, num_offset)
        (md_len,) = struct.unpack_from("=I", raw, num_offset + 4)
        if num >= block or md_len != digest_size:
            raise ValueError("saved hash state is corrupt")
        ctypes.memmove(self._ctx, raw, size)


def resumable(name: str, state: bytes | None = None) -> ResumableHash | None:
    """A resumable hash of ``name`` (from ``state`` if given), or None where unsupported."""
    if _lib is None or name not in _LAYOUTS:
        return None
    return ResumableHash(name, state)
