"""Processes the benchmark starts: each in a process group of its own, its output in a log file,
and every one of them stopped (TERM, then KILL) when the benchmark ends, however it ends."""

import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the benchmark's network namespace has no other user)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.02):
    """Polls `check` until it returns something true, or fails with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(what)
        time.sleep(interval_s)


class Procs:
    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self.running = []
        self.started = 0

    def start(self, name: str, cmd, env=None, stdout=None) -> subprocess.Popen:
        self.started += 1  # a log of its own: a check of the log never sees an earlier run's lines
        log = open(os.path.join(self.log_dir, f"{self.started:04d}-{name}.log"), "wb")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout or log, stderr=log,
                                env=env, start_new_session=True)
        proc.log = log
        proc.name = name
        self.running.append(proc)
        return proc

    def run(self, name: str, cmd, timeout_s: float, ok=(0,)) -> str:
        """Runs `cmd` to its end in a process group of its own and returns its stdout (stderr goes
        to its log). Whatever it started is killed with it at the deadline, and when the benchmark
        is interrupted or a stage fails, like every other process here."""
        proc = self.start(name, cmd, stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{name} still ran after {timeout_s:.0f} s: {_tail(proc)}")
        finally:
            self.stop(proc)
        if proc.returncode not in ok:
            raise RuntimeError(f"{name} exited with {proc.returncode}: {_tail(proc)}")
        return out.decode(errors="replace")

    def wait(self, proc: subprocess.Popen, timeout_s: float) -> int:
        try:
            rc = proc.wait(timeout_s)
        finally:
            self.stop(proc)
        return rc

    def stop(self, proc: subprocess.Popen):
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        proc.log.close()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self):
        for proc in list(reversed(self.running)):
            self.stop(proc)


def _tail(proc: subprocess.Popen) -> str:
    """The end of a process's log, for a one-line failure report."""
    with open(proc.log.name, "rb") as f:
        f.seek(max(0, os.path.getsize(proc.log.name) - 300))
        text = f.read().decode(errors="replace").strip()
    return " / ".join(text.splitlines()[-3:]) or f"see {os.path.basename(proc.log.name)}"


def _signal_group(proc: subprocess.Popen, sig: int):
    try:
        os.killpg(proc.pid, sig)  # the group this benchmark created for it, and only that
    except ProcessLookupError:
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (every thread, living or ended), as the kernel counts."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")
