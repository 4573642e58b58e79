"""The tools users would pick instead of shoal, each started by the benchmark on 127.0.0.1 and
stopped by it: nginx (sendfile) fetched by curl over HTTP and HTTPS, rsync in daemon mode, iperf3,
GnuTLS alone (shoal-bench-tls-stream) and Syncthing. Every one listens on loopback only; the
benchmark also runs in a network namespace of its own that has nothing but loopback."""

import json
import os
import subprocess
import tempfile
import time
import urllib.request
import xml.sax.saxutils

from procs import Procs, free_port, wait_until

# --- nginx + curl ---------------------------------------------------------------------------


class Nginx:
    """nginx serving `root` with sendfile over HTTP and HTTPS (TLS 1.3 only), keep-alive."""

    def __init__(self, procs: Procs, work: str, root: str):
        self.dir = tempfile.mkdtemp(prefix="nginx.", dir=work)
        self.http_port, self.https_port = free_port(), free_port()
        self.key = key = os.path.join(self.dir, "key.pem")
        self.cert = cert = os.path.join(self.dir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1"], check=True,
                       capture_output=True)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
user root root;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {self.dir}/body;
  proxy_temp_path {self.dir}/proxy;
  fastcgi_temp_path {self.dir}/fastcgi;
  uwsgi_temp_path {self.dir}/uwsgi;
  scgi_temp_path {self.dir}/scgi;
  types {{ }}
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{self.http_port};
    listen 127.0.0.1:{self.https_port} ssl;
    ssl_protocols TLSv1.3;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {root};
  }}
}}
""")
        self.proc = procs.start("nginx", ["nginx", "-c", conf, "-p", self.dir])
        wait_until(lambda: _connects(self.https_port), 20, "nginx did not start")

    def url(self, https: bool, path: str) -> str:
        scheme, port = ("https", self.https_port) if https else ("http", self.http_port)
        return f"{scheme}://127.0.0.1:{port}/{urllib.request.quote(path)}"


def curl_fetch(nginx: Nginx, https: bool, paths, out_dir: str) -> float:
    """Seconds for one curl to fetch every path over one keep-alive connection into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    config = os.path.join(out_dir + ".curlrc")
    with open(config, "w") as f:
        for i, p in enumerate(paths):
            f.write(f'url = "{nginx.url(https, p)}"\noutput = "{out_dir}/{i}"\n')
    cmd = ["curl", "--silent", "--show-error", "--fail", "--config", config]
    if https:
        cmd += ["--insecure", "--tlsv1.3"]
    start = time.monotonic()
    subprocess.run(cmd, check=True)
    return time.monotonic() - start


def _connects(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- rsync daemon ---------------------------------------------------------------------------


class RsyncDaemon:
    def __init__(self, procs: Procs, work: str, root: str):
        self.dir = tempfile.mkdtemp(prefix="rsyncd.", dir=work)
        self.port = free_port()
        conf = os.path.join(self.dir, "rsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"""address = 127.0.0.1
port = {self.port}
use chroot = no
pid file = {self.dir}/rsyncd.pid
log file = {self.dir}/rsyncd.log
[lib]
  path = {root}
  read only = yes
  uid = root
  gid = root
""")
        procs.start("rsyncd", ["rsync", "--daemon", "--no-detach", f"--config={conf}"])
        wait_until(lambda: _connects(self.port), 20, "rsync daemon did not start")

    def fetch(self, item: str, out_dir: str) -> float:
        start = time.monotonic()
        subprocess.run(["rsync", "-a", "--whole-file", f"rsync://127.0.0.1:{self.port}/lib/{item}/",
                        out_dir + "/"], check=True)
        return time.monotonic() - start


# --- iperf3: raw TCP into a sink ------------------------------------------------------------


def iperf3(procs: Procs, nbytes: int) -> float:
    """GB/s of one TCP stream on loopback, iperf3's own measurement (receiver side)."""
    port = free_port()
    server = procs.start("iperf3-server", ["iperf3", "--server", "--bind", "127.0.0.1", "--port",
                                           str(port), "--one-off", "--forceflush"])
    # Not probed by connecting: a one-off server would take the probe for its one client.
    wait_until(lambda: b"listening" in open(server.log.name, "rb").read(), 20,
               "iperf3 did not start")
    try:
        out = subprocess.run(["iperf3", "--client", "127.0.0.1", "--port", str(port), "--bytes",
                              str(nbytes), "--json"], check=True, capture_output=True, text=True,
                             timeout=300)
    finally:
        procs.stop(server)
    result = json.loads(out.stdout)
    return result["end"]["sum_received"]["bits_per_second"] / 8 / 1e9


# --- Syncthing ------------------------------------------------------------------------------

LOOPBACK_NOWHERE = "http://127.0.0.1:9/"  # discard port: nothing listens there
EVENTS = "StateChanged,FolderSummary"  # the one mask every request here uses


class Syncthing:
    """One Syncthing 1.19 instance with its own home: GUI/REST and sync on 127.0.0.1 only; global
    and local discovery, relays, NAT traversal, STUN, usage and crash reporting and upgrade checks
    off (and their URLs pointed at a closed loopback port, in case one were ever used)."""

    def __init__(self, procs: Procs, work: str, name: str):
        self.procs, self.name = procs, name
        self.home = os.path.join(work, f"syncthing-{name}")
        os.makedirs(self.home, exist_ok=True)
        subprocess.run(["syncthing", "generate", f"--home={self.home}", "--no-default-folder"],
                       check=True, capture_output=True, env=_syncthing_env())
        self.id = subprocess.run(["syncthing", "serve", f"--home={self.home}", "--device-id"],
                                 check=True, capture_output=True, text=True,
                                 env=_syncthing_env()).stdout.strip()
        self.gui_port, self.sync_port = free_port(), free_port()
        self.apikey = f"shoal-bench-{name}-{os.getpid()}"
        self.proc = None
        self.seen = 0  # the id of the last event read

    def configure(self, folder_path: str, folder_type: str, peer: "Syncthing"):
        q = xml.sax.saxutils.quoteattr
        folder = f"""
    <folder id="bench" label="bench" path={q(folder_path)} type="{folder_type}" rescanIntervalS="0" fsWatcherEnabled="false" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
        <device id="{self.id}"></device>
        <device id="{peer.id}"></device>
        <minDiskFree unit="%">0</minDiskFree>
        <hashers>0</hashers>
        <copiers>0</copiers>
        <order>alphabetic</order>
        <scanProgressIntervalS>-1</scanProgressIntervalS>
        <markerName>.stfolder</markerName>
    </folder>""" if folder_path else ""
        os.makedirs(os.path.join(folder_path, ".stfolder"), exist_ok=True) if folder_path else None
        config = f"""<configuration version="36">{folder}
    <device id="{self.id}" name="{self.name}" compression="metadata">
        <address>tcp://127.0.0.1:{self.sync_port}</address>
    </device>
    <device id="{peer.id}" name="{peer.name}" compression="metadata">
        <address>tcp://127.0.0.1:{peer.sync_port}</address>
    </device>
    <gui enabled="true" tls="false">
        <address>127.0.0.1:{self.gui_port}</address>
        <apikey>{self.apikey}</apikey>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:{self.sync_port}</listenAddress>
        <globalAnnounceServer>{LOOPBACK_NOWHERE}</globalAnnounceServer>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <urURL>{LOOPBACK_NOWHERE}</urURL>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <releasesURL>{LOOPBACK_NOWHERE}</releasesURL>
        <crashReportingEnabled>false</crashReportingEnabled>
        <crashReportingURL>{LOOPBACK_NOWHERE}</crashReportingURL>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
        <stunServer></stunServer>
        <announceLANAddresses>false</announceLANAddresses>
        <setLowPriority>false</setLowPriority>
        <reconnectionIntervalS>1</reconnectionIntervalS>
        <progressUpdateIntervalS>-1</progressUpdateIntervalS>
        <minHomeDiskFree unit="%">0</minHomeDiskFree>
    </options>
</configuration>
"""
        with open(os.path.join(self.home, "config.xml"), "w") as f:
            f.write(config)

    def start(self):
        self.proc = self.procs.start(
            f"syncthing-{self.name}",
            ["syncthing", "serve", f"--home={self.home}", "--no-browser", "--no-restart",
             "--no-upgrade", f"--logfile={self.home}/log.txt"], env=_syncthing_env())
        wait_until(lambda: self._ping(), 60, f"syncthing {self.name} did not start")
        # Syncthing buffers events per mask from the first request with that mask: ask now, so
        # that no state change of the folder is missed later.
        self.events(0, EVENTS, 0)

    def rest(self, path: str):
        req = urllib.request.Request(f"http://127.0.0.1:{self.gui_port}{path}",
                                     headers={"X-API-Key": self.apikey})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def _ping(self) -> bool:
        try:
            return self.rest("/rest/system/ping").get("ping") == "pong"
        except OSError:
            return False

    def events(self, since: int, types: str, timeout_s: int = 1):
        """Events after `since` (a long poll: returns as soon as one comes, or after timeout_s)."""
        return self.rest(f"/rest/events?since={since}&events={types}&timeout={timeout_s}")

    def wait_event(self, check, timeout_s: float, what: str):
        """Long-polls the events until check(event) gives something true, and returns that;
        check(None) after each second without one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events(self.seen, EVENTS, 1)
            for e in events or [None]:  # None: a second went by without an event
                self.seen = e["id"] if e else self.seen
                got = check(e)
                if got:
                    return got
        raise RuntimeError(what)

    def stop(self):
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None


def _syncthing_env():
    env = dict(os.environ)
    env.update(STNOUPGRADE="1", STNODEFAULTFOLDER="1", STNORESTART="1", STMONITORED="yes")
    return env


def syncthing_scan(procs: Procs, work: str, folder: str) -> float:
    """Seconds Syncthing takes to scan `folder` the first time (its own StateChanged duration)."""
    a = Syncthing(procs, work, "scan")
    b = Syncthing(procs, work, "scan-peer")  # a device to share with; never started
    a.configure(folder, "sendonly", b)
    a.start()

    def scanned(e):
        d = e["data"] if e else {}
        if e and e["type"] == "StateChanged" and d.get("folder") == "bench" and \
                d.get("from") == "scanning":
            return float(d["duration"])
        return None

    try:
        return a.wait_event(scanned, 600, "syncthing never finished scanning")
    finally:
        a.stop()


def syncthing_transfer(procs: Procs, work: str, source: str, target: str, total_bytes: int):
    """A fresh pair: returns (scan_s, connected_to_done_s, start_to_done_s). The source folder is
    send-only, the target receive-only; connected is when the target's /rest/system/connections
    first shows the source, done when its /rest/db/completion says 100 % of every byte."""
    a, b = Syncthing(procs, work, "source"), Syncthing(procs, work, "target")
    os.makedirs(target, exist_ok=True)
    a.configure(source, "sendonly", b)
    b.configure(target, "receiveonly", a)
    started = time.monotonic()
    a.start()
    b.start()

    def connected():
        return b.rest("/rest/system/connections")["connections"].get(a.id, {}).get("connected")

    def complete():
        c = b.rest("/rest/db/completion?folder=bench")
        # globalBytes counts 128 bytes per folder besides the files' bytes.
        return (c["completion"] >= 100 and c["globalBytes"] >= total_bytes
                and c["needBytes"] == 0 and c["needItems"] == 0)

    def in_sync(e):
        # Asked only when the target's folder changes state or summary (its events, long-polled),
        # not in a loop: each completion query walks Syncthing's database while it syncs.
        if complete():
            return True
        d = e["data"] if e else {}
        if e and e["type"] == "StateChanged" and d.get("folder") == "bench" and d.get("to") == "idle":
            # Idle but not complete yet: the index may lag the state by a moment.
            return wait_until(complete, 5, "syncthing idle but never complete", 0.02)
        return False

    try:
        wait_until(connected, 900, "syncthing never connected")
        connected_at = time.monotonic()
        if not complete():
            b.wait_event(in_sync, 900, "syncthing never completed")
        done = time.monotonic()
        return _scan_seconds(a), done - connected_at, done - started
    finally:
        a.stop()
        b.stop()


def _scan_seconds(st: Syncthing):
    """The duration of the folder's first scan (its StateChanged event out of scanning)."""
    for e in st.events(0, EVENTS, 0):
        d = e["data"]
        if e["type"] == "StateChanged" and d.get("folder") == "bench" and \
                d.get("from") == "scanning":
            return float(d["duration"])
    return None
