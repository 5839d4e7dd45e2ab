"""This machine's limits, measured in the same run: sha256 on one core, one loopback TCP stream,
and (for context) the disk's write-then-fsync rate.

Run as ``python -m bench.limits sha256|loopback|disk DIR`` (the benchmark does, in a fresh process
with nothing else running); prints one JSON object with the samples in MiB/s.

``python -m bench.limits rawserver FILE`` is a bare HTTP/1.1 server for the client's own ceilings:
GET sends FILE with sendfile, PUT reads and drops the body and answers 201. It prints its port.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time

MiB = 1 << 20


def sha256_mibps(total: int = 512 * MiB, piece: int = MiB, repeats: int = 3) -> list[float]:
    """hashlib.sha256 fed 1 MiB buffers (Dockyard's buffer size) from memory, one thread."""
    buffer = os.urandom(64 * MiB)
    view = memoryview(buffer)
    samples = []
    for _ in range(repeats):
        hasher = hashlib.sha256()
        start = time.perf_counter()
        done = 0
        while done < total:
            for offset in range(0, len(view), piece):
                hasher.update(view[offset : offset + piece])
            done += len(view)
        hasher.hexdigest()
        samples.append(done / MiB / (time.perf_counter() - start))
    return samples


def _receiver(port_queue, total: int, piece: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port_queue.put(listener.getsockname()[1])
    conn, _ = listener.accept()
    buffer = bytearray(piece)
    view = memoryview(buffer)
    received = 0
    while received < total:
        n = conn.recv_into(view)
        if n == 0:
            break
        received += n
    conn.sendall(b"k" if received == total else b"x")
    conn.close()
    listener.close()


def loopback_mibps(total: int = 1024 * MiB, piece: int = MiB, repeats: int = 3) -> list[float]:
    """One TCP stream over 127.0.0.1 between two processes: sendall of 1 MiB buffers, recv_into."""
    payload = os.urandom(piece)
    context = multiprocessing.get_context("fork")
    samples = []
    for _ in range(repeats):
        ports = context.Queue()
        process = context.Process(target=_receiver, args=(ports, total, piece))
        process.start()
        port = ports.get(timeout=30)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            start = time.perf_counter()
            sent = 0
            while sent < total:
                sock.sendall(payload)
                sent += len(payload)
            ack = sock.recv(1)
            elapsed = time.perf_counter() - start
        process.join(30)
        if ack != b"k":
            raise RuntimeError("the loopback receiver got the wrong byte count")
        samples.append(total / MiB / elapsed)
    return samples


def disk_mibps(directory: str, total: int = 256 * MiB, piece: int = MiB, repeats: int = 3) -> list[float]:
    """Write ``total`` bytes in 1 MiB writes to a new file in ``directory``, then fsync it and its directory."""
    payload = os.urandom(piece)
    samples = []
    for i in range(repeats):
        path = os.path.join(directory, f"disk-probe-{i}")
        start = time.perf_counter()
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            written = 0
            while written < total:
                written += os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        samples.append(total / MiB / (time.perf_counter() - start))
        os.unlink(path)
    return samples


def rawserver(path: str) -> None:
    """GET: the file by sendfile. PUT/PATCH/POST: read Content-Length bytes, answer 201. One thread a connection."""
    import threading

    size = os.path.getsize(path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)

    def handle(conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        sink = bytearray(MiB)
        with conn, reader:
            while True:
                line = reader.readline()
                if not line:
                    return
                method = line.split(b" ", 1)[0]
                length = 0
                while True:
                    header = reader.readline()
                    if header in (b"\r\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if method in (b"GET", b"HEAD"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                    if method == b"GET":
                        with open(path, "rb") as handle_:
                            conn.sendfile(handle_)
                else:
                    while length:
                        n = reader.readinto(memoryview(sink)[: min(length, len(sink))])
                        if not n:
                            return
                        length -= n
                    conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")

    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main() -> None:
    which = sys.argv[1]
    if which == "rawserver":
        rawserver(sys.argv[2])
        return
    if which == "disk":
        samples = disk_mibps(sys.argv[2])
    else:
        samples = {"sha256": sha256_mibps, "loopback": loopback_mibps}[which]()
    print(json.dumps({"samples": samples, "median": statistics.median(samples)}))


if __name__ == "__main__":
    main()
