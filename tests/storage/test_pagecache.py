"""Reading small blobs from the page cache on the event loop, and only from there."""

import os

import pytest

from dockyard.storage.pagecache import read_if_cached

pytestmark = pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="no preadv2(RWF_NOWAIT) here")


def _write(path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _evict(path) -> None:
    """Drop the (clean, fsynced) file's pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_cached_bytes_are_read(tmp_path):
    data = os.urandom(4096 + 17)
    _write(tmp_path / "blob", data)
    assert read_if_cached(str(tmp_path / "blob"), len(data)) == data


def test_uncached_bytes_are_left_to_a_thread(tmp_path):
    data = os.urandom(64 << 10)
    _write(tmp_path / "blob", data)
    _evict(tmp_path / "blob")
    if read_if_cached(str(tmp_path / "blob"), len(data)) is not None:
        pytest.skip("this filesystem ignores the eviction hint or RWF_NOWAIT")
    assert (tmp_path / "blob").read_bytes() == data  # read normally, the file is unchanged
    assert read_if_cached(str(tmp_path / "blob"), len(data)) == data  # and now cached


def test_a_file_shorter_than_asked_gives_none(tmp_path):
    _write(tmp_path / "blob", b"abc")
    assert read_if_cached(str(tmp_path / "blob"), 4) is None


def test_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_if_cached(str(tmp_path / "nothing"), 4)
