"""The Windows build of corral-agent, run under Wine against a real server: register, run to
Online, status, a Run Command step on the Windows code path, the Windows service (install,
running, uninstall) through Wine's service manager, and the deregistration lock-out.

scripts/test builds the agent for x86_64-pc-windows-gnu, installs Wine and points these
variables at them: CORRAL_WINDOWS_AGENT (the .exe, with the bcryptprimitives.dll stand-in beside
it, see tests/wine/), CORRAL_WINE (the wine64 loader) and WINEPREFIX. Without them the tests
are skipped (a developer machine without Wine); the test command always sets them."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

AGENT = os.environ.get("CORRAL_WINDOWS_AGENT")
WINE = os.environ.get("CORRAL_WINE")

pytestmark = pytest.mark.skipif(not (AGENT and WINE), reason="CORRAL_WINDOWS_AGENT and CORRAL_WINE are not set")

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ssm.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def aws(corral, *args, check=True):
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {proc.stderr}")
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def win_path(path: Path) -> str:
    """Wine maps the Unix root to drive Z:."""
    return "Z:" + str(path).replace("/", "\\")


def wine_env():
    env = dict(os.environ)
    env["WINEDEBUG"] = "-all"
    env["CORRAL_AGENT_RECONNECT_MIN_MS"] = "200"
    return env


def wine(*args, timeout=120, **kwargs):
    return subprocess.run([WINE, *args], env=wine_env(), capture_output=True, text=True, timeout=timeout, **kwargs)


def until(check, secs=60, every=0.5):
    deadline = time.time() + secs
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return None


def instance(corral, instance_id):
    listed = aws(corral, "ssm", "describe-instance-information")["InstanceInformationList"]
    return next((i for i in listed if i["InstanceId"] == instance_id), None)


def test_windows_agent_under_wine(corral, tmp_path):
    aws(corral, "iam", "create-role", "--role-name", "WinRole", "--assume-role-policy-document", TRUST)
    aws(corral, "iam", "attach-role-policy", "--role-name", "WinRole", "--policy-arn",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    act = aws(corral, "ssm", "create-activation", "--iam-role", "WinRole", "--default-instance-name", "win")
    state = tmp_path / "win-state"
    state_arg = ["--state-dir", win_path(state)]

    # register: the instance ID on stdout, as on Linux.
    reg = wine(AGENT, "register", "--code", act["ActivationCode"], "--id", act["ActivationId"], "--region", "us-east-1",
               "--endpoint", corral.endpoint, "--ca-bundle", win_path(corral.data_dir / "ca.pem"), *state_arg)
    assert reg.returncode == 0, reg.stdout + reg.stderr
    instance_id = reg.stdout.strip()
    assert instance_id.startswith("mi-"), reg.stdout
    assert instance_id in wine(AGENT, "status", *state_arg).stdout

    # run: Online, reporting a Windows platform.
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen([WINE, AGENT, "run", "--ping-interval-secs", "2", *state_arg], env=wine_env(),
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        info = until(lambda: (i := instance(corral, instance_id)) and i["PingStatus"] == "Online"
                     and i.get("PlatformType") and i)
        assert info, instance(corral, instance_id)
        assert info["PlatformType"] == "Windows" and info["Name"] == "win"

        # A Run Command step takes the Windows path (PowerShell document, Windows process
        # control); Wine's powershell.exe is a stand-in, so only the outcome is checked, not
        # the output.
        command_id = aws(corral, "ssm", "send-command", "--document-name", "AWS-RunPowerShellScript",
                         "--instance-ids", instance_id, "--parameters", 'commands=["Write-Output hello"]')["Command"]["CommandId"]

        def finished():
            inv = aws(corral, "ssm", "list-command-invocations", "--command-id", command_id)["CommandInvocations"]
            return inv and inv[0]["Status"] in ("Success", "Failed") and inv[0]
        done = until(finished, secs=90)
        assert done, aws(corral, "ssm", "list-command-invocations", "--command-id", command_id)
        assert "running a command" in (tmp_path / "run.log").read_text()
    finally:
        run.terminate()
        run.wait(timeout=30)
        log.close()

    # The Windows service, through Wine's service manager.
    before = instance(corral, instance_id)["LastPingDateTime"]
    installed = wine(AGENT, "service", "install", *state_arg)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    try:
        running = until(lambda: "RUNNING" in wine("sc", "query", "CorralAgent", timeout=60).stdout)
        assert running, wine("sc", "query", "CorralAgent").stdout
        pinged = until(lambda: instance(corral, instance_id)["LastPingDateTime"] != before, secs=60)
        assert pinged, "the service pings"
    finally:
        removed = wine(AGENT, "service", "uninstall")
        assert removed.returncode == 0, removed.stdout + removed.stderr
    assert until(lambda: wine("sc", "query", "CorralAgent", timeout=60).returncode != 0, secs=60), "service removed"

    # Deregistration locks the machine out at once: the agent says so and stays idle.
    log = open(tmp_path / "run2.log", "w")
    run = subprocess.Popen([WINE, AGENT, "run", "--ping-interval-secs", "2", *state_arg], env=wine_env(),
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        until(lambda: "control channel open" in (tmp_path / "run2.log").read_text(), secs=60)
        aws(corral, "ssm", "deregister-managed-instance", "--instance-id", instance_id)
        said = f"this machine was deregistered from Corral ({instance_id})"
        assert until(lambda: said in (tmp_path / "run2.log").read_text(), secs=60), (tmp_path / "run2.log").read_text()
        assert run.poll() is None, "a deregistered agent idles instead of exiting"
        assert instance(corral, instance_id) is None
    finally:
        run.terminate()
        run.wait(timeout=30)
        log.close()
