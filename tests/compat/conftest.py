"""Fixtures: a real `corral server` on an ephemeral port with a fresh data dir.

The binary comes from CORRAL_BIN (set by scripts/test) or target/debug/corral.
"""

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Corral:
    def __init__(self, data_dir: Path, proc: subprocess.Popen, endpoint: str, account_id: str):
        self.data_dir = data_dir
        self.proc = proc
        self.endpoint = endpoint
        self.account_id = account_id

    @property
    def cli_env(self):
        """The environment the README's quickstart exports."""
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        env["AWS_CONFIG_FILE"] = str(self.data_dir / "aws-config")
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.data_dir / "aws-credentials")
        env["AWS_PROFILE"] = "corral"
        return env

    def credentials(self):
        values = {}
        for line in (self.data_dir / "aws-credentials").read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
        return values["aws_access_key_id"], values["aws_secret_access_key"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_corral(data_dir: Path, *extra_args: str) -> Corral:
    binary = os.environ.get("CORRAL_BIN", str(ROOT / "target" / "debug" / "corral"))
    log = open(str(data_dir) + ".log", "ab")
    proc = subprocess.Popen(
        [binary, "server", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"corral exited early: {open(str(data_dir) + '.log').read()}")
            continue
        lines.append(line.strip())
        if "aws sts get-caller-identity" in line:
            break
    first = next(l for l in lines if l.startswith("corral: listening on "))
    endpoint = first.split()[3]
    account = first.split("(account ")[1].split(",")[0]
    # Keep draining stdout so the server never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return Corral(data_dir, proc, endpoint, account)


@pytest.fixture
def corral(tmp_path, monkeypatch):
    # The machine's own AWS settings (AWS_CA_BUNDLE above all, which overrides a profile's
    # ca_bundle) must not leak into what the tests check.
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    server = start_corral(tmp_path / "corral-data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def corral_module(tmp_path_factory):
    """Like `corral`, but one server shared by every test of a module (for tests that keep
    long-lived agents connected to it)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("AWS_"):
                mp.delenv(key)
        server = start_corral(tmp_path_factory.mktemp("corral") / "corral-data")
        try:
            yield server
        finally:
            server.stop()
