"""A real Ceph radosgw (S3) for the tests: one single-node cluster per session.

Debian 12's packages (``radosgw ceph-mon ceph-osd ceph-common``, which ``./dev test``
installs) run a monitor, one OSD on the in-memory ``memstore`` objectstore and radosgw
with the beast frontend, all on 127.0.0.1 and free ports, with every file in one
temporary directory under /tmp. No ceph-mgr: nothing here needs one.

``radosgw.new_bucket()`` creates and names a fresh bucket, so tests never see each
other's objects. ``stop()`` and ``start()`` restart radosgw alone (same port, same
cluster), for the fault tests. The cluster is torn down at the end of the session.

A missing binary skips the tests that need it, except under CI=true, where it fails
them (as for the other external tools).

Startup (mkfs, monitor, OSD, S3 user, radosgw, the pools radosgw makes on first use)
takes about 1.8 s on 2 cores; a radosgw restart 0.2 to 0.5 s (``python tests/servers/radosgw.py``
prints the times).

Config quirks, each found the hard way:

- Auth is off (``auth cluster/service/client required = none``). Secure messenger
  mode needs cephx session keys, and daemons try "secure" first on their monitor
  connection: without ``ms mon client mode = crc`` the monitor, the OSD, ``ceph`` and
  ``radosgw-admin`` all come up, but radosgw loops forever on ``send_auth_request
  get_initial_auth_request returned -13`` and never listens. Every ``ms * mode`` is set
  to ``crc``. Only msgr2 is bound (``ms bind msgr1 = false``); the monmap gets the v2
  address with ``monmaptool --addv a [v2:127.0.0.1:PORT]``.
- ``ceph-mon --mkfs`` needs no keyring with auth off; the OSD must be made known to the
  monitor (``ceph osd new UUID``) before ``ceph-osd --mkfs --osd-uuid UUID`` and its
  first start, which adds it to the CRUSH map by itself (``osd crush update on start``).
- One OSD: ``osd pool default size = 1`` and ``min size = 1`` need ``mon allow pool
  size one``; ``osd crush chooseleaf type = 0`` lets CRUSH place on OSDs rather than
  hosts; PG autoscaling off and 8 PGs per pool, so the 7 pools radosgw makes peer
  quickly and stay far below ``mon max pg per osd`` (250).
- ``mon warn on pool no redundancy = false`` and the data-avail thresholds lowered:
  otherwise a disk with less than 30 % free turns health to WARN ("mon a is low on
  available space", seen here), and under 5 % the monitor shuts itself down.
- The monitor batches map changes for ``paxos propose interval`` (1 s): every pool
  radosgw creates then costs ~2 s, a new cluster ~15 s. At 0.01 s a pool takes a few
  tens of milliseconds.
- The admin sockets (``$run_dir/$name.asok``) are unix sockets, limited to 107 bytes
  of path: the cluster lives in a short ``/tmp/dy-ceph-*`` directory, not pytest's tmp.
- A bucket name needs 3 to 63 characters (``InvalidBucketName`` otherwise).
- radosgw checks SigV4 signatures made for any region name, but CreateBucket with a
  LocationConstraint other than its zonegroup's api name ("default") fails with
  ``InvalidLocationConstraint``. With region ``us-east-1`` botocore (and the driver)
  send none, which the default zonegroup takes.
- radosgw (16.2) refuses CompleteMultipartUpload with fewer parts than were uploaded
  (``InvalidPart``), where AWS takes any ascending subset: the driver copes (see
  dockyard/storage/s3.py).
- Without ``tcp_nodelay=1`` on the beast frontend many small requests (list, copy,
  multi-delete) take 40-50 ms each (Nagle against delayed ACKs) instead of 5.
- ``radosgw-admin user create`` makes the realm/zonegroup/zone and their pools, so it
  runs before radosgw starts. The first bucket makes the index and data pools, the
  first multipart upload ``default.rgw.buckets.non-ec``: a warm-up does both, so the
  first test doesn't pay for it.
- memstore keeps the OSD's objects in memory and writes them to its directory only on
  a clean stop: fine for tests (the OSD is never restarted), and fast. Teardown kills
  the daemons rather than have memstore write out what is deleted next.
- radosgw on SIGTERM waits for ``rgw exit timeout secs`` at most for requests in flight;
  it normally exits within a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
START_TIMEOUT = 60
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child: be killed when the test process dies, however it dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: missing tools are an error)", pytrace=False)
    pytest.skip(message)


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


CONFIG = """\
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
ms bind msgr1 = false
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
mon data = {root}/mon/$name
osd data = {root}/osd/$name
osd objectstore = memstore
memstore device bytes = 2147483648
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
paxos propose interval = 0.01
paxos min wait = 0.01
debug ms = 0
debug rgw = 1

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw data = {root}/rgw
rgw thread pool size = 64
rgw enable usage log = false
rgw enable ops log = false
rgw exit timeout secs = 10
"""


class RadosgwServer:
    region = REGION

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "ceph.conf"
        self.mon_port = _free_port()
        self.port = _free_port()
        self.access_key = "DOCKYARD" + uuid.uuid4().hex[:12].upper()
        self.secret_key = uuid.uuid4().hex + uuid.uuid4().hex
        self.procs: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- processes -----------------------------------------------------------
    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> str:
        proc = subprocess.run(
            [*args, "-c", str(self.conf)],
            check=False, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [*args, "-f", "-c", str(self.conf)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            out = (self.root / "log" / f"{name}.out").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{out}\n(logs in {self.root / 'log'})")

    def _stop(self, name: str, timeout: float = 15, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _timed(self, label: str, started: float) -> float:
        now = time.monotonic()
        self.timings[label] = round(now - started, 2)
        return now

    # -- the cluster ---------------------------------------------------------
    def setup(self) -> None:
        t = t0 = time.monotonic()
        for sub in ("run", "log", "mon", "osd/osd.0", "rgw"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        self.conf.write_text(CONFIG.format(fsid=fsid, mon_port=self.mon_port, rgw_port=self.port, root=self.root))
        monmap = self.root / "monmap"
        subprocess.run(
            ["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]", str(monmap)],
            check=True, capture_output=True, timeout=30,
        )
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap))
        self._spawn("mon.a", "ceph-mon", "-i", "a")
        t = self._timed("monitor", t)

        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "--connect-timeout", str(START_TIMEOUT), "osd", "new", osd_uuid).strip()
        self._check_alive("mon.a")
        self._run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        self._spawn("osd.0", "ceph-osd", "-i", osd_id)
        t = self._timed("osd", t)

        # waits for the OSD by itself: the realm, zone and their pools need it up
        self._run(
            "radosgw-admin", "user", "create", "--uid", "dockyard", "--display-name", "dockyard tests",
            "--access-key", self.access_key, "--secret-key", self.secret_key,
        )
        self._check_alive("osd.0")
        t = self._timed("user", t)
        self.start()
        t = self._timed("radosgw", t)
        self._warm_up()
        self._timed("warm-up", t)
        self._timed("total", t0)

    def start(self) -> None:
        if "rgw" in self.procs:
            return
        self._spawn("rgw", "radosgw", "-n", "client.rgw")
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self._check_alive("rgw")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"radosgw not answering after {START_TIMEOUT}s (logs in {self.root / 'log'})")
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop("rgw")

    def close(self) -> None:
        # killed: a clean stop of memstore writes every object to disk, only to be deleted
        for name in ("rgw", "osd.0", "mon.a"):
            self._stop(name, sig=signal.SIGKILL)

    # -- S3 --------------------------------------------------------------------
    def client(self):
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"dockyard-{uuid.uuid4().hex[:24]}"
        self.client().create_bucket(Bucket=name)
        return name

    def _warm_up(self) -> None:
        """Make the pools radosgw creates on first use: the index, data and non-ec pools."""
        s3 = self.client()
        bucket = self.new_bucket()
        s3.put_object(Bucket=bucket, Key="warm-up", Body=b"x")
        upload = s3.create_multipart_upload(Bucket=bucket, Key="warm-up-multipart")["UploadId"]
        s3.abort_multipart_upload(Bucket=bucket, Key="warm-up-multipart", UploadId=upload)
        s3.delete_object(Bucket=bucket, Key="warm-up")
        s3.delete_bucket(Bucket=bucket)


def start_radosgw() -> RadosgwServer:
    # unix socket paths must stay short: /tmp directly, not pytest's deep tmp dirs
    server = RadosgwServer(Path(tempfile.mkdtemp(prefix="dy-ceph-", dir="/tmp")))
    try:
        server.setup()
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture(scope="session")
def radosgw():
    missing = missing_binaries()
    if missing:
        _unavailable(
            f"Ceph binaries not on PATH: {', '.join(missing)} (Debian: apt-get install radosgw ceph-mon ceph-osd ceph-common)"
        )
    try:
        server = start_radosgw()
    except (RuntimeError, subprocess.SubprocessError) as e:
        pytest.fail(f"radosgw did not start: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.close()
        shutil.rmtree(server.root, ignore_errors=True)


if __name__ == "__main__":  # python tests/servers/radosgw.py: start, print the times, stop
    started = time.monotonic()
    server = start_radosgw()
    print("started in", round(time.monotonic() - started, 2), "s:", server.timings, server.endpoint)
    t = time.monotonic()
    server.stop()
    server.start()
    print("radosgw restarted in", round(time.monotonic() - t, 2), "s")
    server.close()
    if "--keep" not in sys.argv:
        shutil.rmtree(server.root, ignore_errors=True)
    else:
        print(server.root)
