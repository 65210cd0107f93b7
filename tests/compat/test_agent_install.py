"""The README's machine setup: install.sh stages the agent and its systemd unit and registers
the machine; the installed agent then reports to Corral (systemd itself is not driven here)."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}'


def aws(corral, *args):
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def agent_bin():
    path = os.environ.get("CORRAL_AGENT_BIN", str(ROOT / "target" / "debug" / "corral-agent"))
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: build it with `cargo build -p corral-agent` (scripts/test does)")
    return path


def test_install_register_and_report(corral, tmp_path, agent_bin):
    aws(corral, "iam", "create-role", "--role-name", "SSMServiceRole", "--assume-role-policy-document", TRUST)
    aws(corral, "iam", "attach-role-policy", "--role-name", "SSMServiceRole", "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    act = json.loads(aws(corral, "ssm", "create-activation", "--iam-role", "SSMServiceRole", "--default-instance-name", "web"))
    stage = tmp_path / "stage"
    state = tmp_path / "state"
    proc = subprocess.run(
        ["sh", str(ROOT / "install.sh"), "--binary", agent_bin, "--destdir", str(stage), "--no-systemd",
         "--state-dir", str(state), "--code", act["ActivationCode"], "--id", act["ActivationId"],
         "--region", "us-east-1", "--endpoint", corral.endpoint, "--ca-bundle", str(corral.data_dir / "ca.pem")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = stage / "usr" / "local" / "bin" / "corral-agent"
    unit = (stage / "etc" / "systemd" / "system" / "corral-agent.service").read_text()
    assert installed.exists()
    assert "ExecStart=/usr/local/bin/corral-agent run" in unit and "Restart=always" in unit

    # The script says exactly how to start what it staged: that command, pasted into a shell,
    # runs the agent with the state dir it registered into (no wait for a registration
    # elsewhere), and the machine reports in.
    assert "Start the agent" not in proc.stderr, proc.stderr  # the agent's own hint would be wrong here
    prefix = "to run the staged agent here instead: "
    line = next((l for l in proc.stdout.splitlines() if l.startswith(prefix)), None)
    assert line, proc.stdout
    command = line[len(prefix):]
    assert command.startswith(str(installed)) and f"--state-dir {state}" in command, command
    agent = subprocess.Popen(["sh", "-c", f"exec {command} --ping-interval-secs 1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        info = []
        while time.time() < deadline:
            info = json.loads(aws(corral, "ssm", "describe-instance-information"))["InstanceInformationList"]
            if info and info[0]["PingStatus"] == "Online":
                break
            time.sleep(0.5)
        assert info and info[0]["PingStatus"] == "Online", info
        assert info[0]["Name"] == "web"
        status = subprocess.run([str(installed), "status", "--state-dir", str(state)], capture_output=True, text=True).stdout
        assert info[0]["InstanceId"] in status
    finally:
        agent.terminate()
        agent.wait(timeout=15)
