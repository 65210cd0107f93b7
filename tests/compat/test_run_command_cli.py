"""Run Command as a user drives it: the AWS CLI and boto3 against a real `corral server`, with
real `corral-agent` processes running the shell scripts on this machine.

One server and one fleet of agents are shared by the module (registering and connecting agents
is the slow part): `lab1` and `lab2` tagged env=lab, `prod` tagged env=prod, and `spare`
(env=spare), which only the delivery-timeout test uses, because it stops that agent.
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TERMINAL = ("Success", "Failed", "TimedOut", "Cancelled")
AGENTS = (("lab1", "lab"), ("lab2", "lab"), ("prod", "prod"), ("spare", "spare"))


def agent_bin():
    path = os.environ.get("CORRAL_AGENT_BIN", str(ROOT / "target" / "debug" / "corral-agent"))
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: build it with `cargo build -p corral-agent` (scripts/test does)")
    return path


def aws(corral, *args, check=True):
    """Runs the AWS CLI on the server's profile; returns the parsed JSON output (or the process
    when check=False)."""
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    if not check:
        return proc
    if proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def server_log(corral):
    return Path(str(corral.data_dir) + ".log").read_text(errors="replace")


class Agent:
    """A registered `corral-agent` with its own state dir, run as a child process."""

    def __init__(self, name, state_dir, instance_id):
        self.name = name
        self.state_dir = state_dir
        self.instance_id = instance_id
        self.log_path = state_dir.with_suffix(".agent.log")
        self.proc = None

    @classmethod
    def register(cls, corral, name, state_dir, activation):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CORRAL_AGENT_STATE_DIR"}
        proc = subprocess.run(
            [agent_bin(), "register", "--code", activation["ActivationCode"], "--id", activation["ActivationId"],
             "--region", "us-east-1", "--endpoint", corral.endpoint,
             "--ca-bundle", str(corral.data_dir / "ca.pem"), "--state-dir", str(state_dir)],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, f"corral-agent register failed: {proc.stderr}"
        return cls(name, state_dir, proc.stdout.strip())

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CORRAL_AGENT_STATE_DIR"}
        env["CORRAL_AGENT_LOG"] = "info"
        # Reconnect the control channel quickly instead of the production 5–10 s.
        env["CORRAL_AGENT_RECONNECT_MIN_MS"] = "200"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [agent_bin(), "run", "--state-dir", str(self.state_dir), "--ping-interval-secs", "60"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Fleet:
    def __init__(self, corral, agents):
        self.corral = corral
        self.agents = agents

    def __getitem__(self, name):
        return self.agents[name]

    def diag(self):
        """The server's and agents' logs (their tails), for assertion messages."""
        parts = [f"--- server log ---\n{server_log(self.corral)[-6000:]}"]
        for a in self.agents.values():
            parts.append(f"--- agent {a.name} ({a.instance_id}) ---\n{a.log()[-3000:]}")
        return "\n".join(parts)

    def ssm(self):
        """A boto3 SSM client with explicit endpoint, CA and credentials (nothing from the
        machine's AWS_* settings)."""
        key, secret = self.corral.credentials()
        session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
        return session.client("ssm", endpoint_url=self.corral.endpoint, verify=str(self.corral.data_dir / "ca.pem"))


def wait_connected(corral, agents, deadline_secs=30):
    """Waits until every agent is Online and its control channel is open (the server logs it:
    Online alone is also set by the health ping)."""
    ids = {a.instance_id for a in agents}
    deadline = time.time() + deadline_secs
    online = set()
    while time.time() < deadline:
        info = aws(corral, "ssm", "describe-instance-information")["InstanceInformationList"]
        online = {i["InstanceId"] for i in info if i["PingStatus"] == "Online"}
        if ids <= online:
            break
        time.sleep(0.5)
    assert ids <= online, f"not Online: {ids - online}"
    log = ""
    while time.time() < deadline:
        log = server_log(corral)
        if all(f"control channel open instance_id={i}" in log for i in ids):
            return
        time.sleep(0.2)
    missing = [a for a in agents if f"control channel open instance_id={a.instance_id}" not in log]
    details = "\n".join(f"--- agent {a.name} ({a.instance_id}) ---\n{a.log()[-3000:]}" for a in missing)
    raise AssertionError(f"control channel never opened for {[a.instance_id for a in missing]}:\n{details}")


@pytest.fixture(scope="module")
def fleet(corral_module, tmp_path_factory):
    corral = corral_module
    aws(corral, "iam", "create-role", "--role-name", "RunCommandRole", "--assume-role-policy-document", TRUST)
    aws(corral, "iam", "attach-role-policy", "--role-name", "RunCommandRole", "--policy-arn", CORE)
    activation = aws(corral, "ssm", "create-activation", "--iam-role", "RunCommandRole",
                     "--registration-limit", str(len(AGENTS)), "--default-instance-name", "box")
    base = tmp_path_factory.mktemp("agents")
    agents = {}
    try:
        for name, env in AGENTS:
            agent = Agent.register(corral, name, base / name, activation)
            aws(corral, "ssm", "add-tags-to-resource", "--resource-type", "ManagedInstance",
                "--resource-id", agent.instance_id, "--tags", f"Key=env,Value={env}")
            agent.start()
            agents[name] = agent
        wait_connected(corral, list(agents.values()))
        yield Fleet(corral, agents)
    finally:
        for agent in agents.values():
            agent.stop()


# === helpers: the CLI ===


def cli_command(corral, command_id):
    commands = aws(corral, "ssm", "list-commands", "--command-id", command_id)["Commands"]
    assert len(commands) == 1, commands
    return commands[0]


def cli_wait_terminal(fleet, command_id, secs=60):
    deadline = time.time() + secs
    while True:
        c = cli_command(fleet.corral, command_id)
        if c["Status"] in TERMINAL:
            return c
        assert time.time() < deadline, f"command {command_id} still {c['Status']} after {secs} s\n{fleet.diag()}"
        time.sleep(0.5)


# === helpers: boto3 ===


def command(ssm, command_id):
    commands = ssm.list_commands(CommandId=command_id)["Commands"]
    assert len(commands) == 1, commands
    return commands[0]


def wait_terminal(fleet, ssm, command_id, secs=60):
    deadline = time.time() + secs
    while True:
        c = command(ssm, command_id)
        if c["Status"] in TERMINAL:
            return c
        assert time.time() < deadline, f"command {command_id} still {c['Status']} after {secs} s\n{fleet.diag()}"
        time.sleep(0.2)


def invocations(ssm, command_id):
    return ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]


def run_shell(ssm, instance_ids, lines, **kw):
    sent = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=instance_ids, Parameters={"commands": lines}, **kw
    )
    return sent["Command"]["CommandId"]


# === 1. the commands, with the AWS CLI ===


def test_cli_send_command_by_tag_and_read_results(fleet):
    corral = fleet.corral
    lab = {fleet["lab1"].instance_id, fleet["lab2"].instance_id}
    sent = aws(
        corral, "ssm", "send-command", "--document-name", "AWS-RunShellScript",
        "--targets", "Key=tag:env,Values=lab",
        "--parameters", 'commands=["uptime","df -h /"]',
        "--max-concurrency", "10%", "--max-errors", "1",
    )["Command"]
    command_id = sent["CommandId"]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Targets"] == [{"Key": "tag:env", "Values": ["lab"]}]
    assert sent["Parameters"] == {"commands": ["uptime", "df -h /"]}
    assert (sent["MaxConcurrency"], sent["MaxErrors"]) == ("10%", "1")

    done = cli_wait_terminal(fleet, command_id)
    assert done["Status"] == "Success", f"{done}\n{fleet.diag()}"
    assert done["StatusDetails"] == "Success"
    assert done["TargetCount"] == 2
    assert (done["CompletedCount"], done["ErrorCount"]) == (2, 0)

    listed = aws(corral, "ssm", "list-command-invocations", "--command-id", command_id, "--details")
    invs = listed["CommandInvocations"]
    assert {i["InstanceId"] for i in invs} == lab, invs
    for inv in invs:
        assert inv["Status"] == "Success", inv
        assert inv["DocumentName"] == "AWS-RunShellScript"
        plugin = inv["CommandPlugins"][0]
        assert plugin["Name"] == "aws:runShellScript", plugin
        assert plugin["ResponseCode"] == 0, plugin
        assert "load average" in plugin["Output"], plugin

    mi = fleet["lab1"].instance_id
    got = aws(corral, "ssm", "get-command-invocation", "--command-id", command_id, "--instance-id", mi)
    assert got["InstanceId"] == mi
    assert got["ResponseCode"] == 0, got
    assert got["Status"] == "Success" and got["StatusDetails"] == "Success", got
    assert "load average" in got["StandardOutputContent"], got
    assert "Filesystem" in got["StandardOutputContent"], got
    assert got["StandardErrorContent"] == "", got
    assert got["ExecutionElapsedTime"].startswith("PT"), got
    assert got["PluginName"] == "aws:runShellScript", got

    # The CLI's waiter polls GetCommandInvocation and accepts Success.
    proc = aws(corral, "ssm", "wait", "command-executed", "--command-id", command_id, "--instance-id", mi, check=False)
    assert proc.returncode == 0, proc.stderr

    # prod was not addressed.
    prod = aws(corral, "ssm", "get-command-invocation", "--command-id", command_id,
               "--instance-id", fleet["prod"].instance_id, check=False)
    assert prod.returncode != 0 and "InvocationDoesNotExist" in prod.stderr, prod.stderr


# === 2. cancelling a running command, with the AWS CLI ===


def pid_alive(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_with_args(args):
    """PIDs of live processes whose command line is exactly `args`."""
    wanted = "\0".join(args) + "\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_text(errors="replace") == wanted and pid_alive(entry.name):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_cli_cancel_command(fleet, tmp_path):
    corral = fleet.corral
    mi = fleet["prod"].instance_id
    pidfile = tmp_path / "shell.pid"
    # A sleep of about 120 s with a unique argument, so that this test can find that process.
    seconds = f"120.{uuid.uuid4().int % 10**6:06d}"
    commands = json.dumps([f"echo $$ > {pidfile}", f"sleep {seconds}"])
    sent = aws(corral, "ssm", "send-command", "--document-name", "AWS-RunShellScript",
               "--instance-ids", mi, "--parameters", f"commands={commands}")["Command"]
    command_id = sent["CommandId"]

    deadline = time.time() + 30
    inv = {}
    while time.time() < deadline:
        inv = aws(corral, "ssm", "get-command-invocation", "--command-id", command_id, "--instance-id", mi)
        if inv["Status"] == "InProgress" and pidfile.exists() and pidfile.read_text().strip():
            break
        assert inv["Status"] in ("Pending", "InProgress"), f"{inv}\n{fleet.diag()}"
        time.sleep(0.3)
    assert inv["Status"] == "InProgress", f"{inv}\n{fleet.diag()}"
    assert pidfile.exists(), f"the script never started\n{fleet.diag()}"
    shell_pid = int(pidfile.read_text().strip())
    deadline = time.time() + 10
    while not processes_with_args(["sleep", seconds]) and time.time() < deadline:
        time.sleep(0.1)
    assert processes_with_args(["sleep", seconds]), "the sleep never started"

    assert aws(corral, "ssm", "cancel-command", "--command-id", command_id) == {}

    done = cli_wait_terminal(fleet, command_id, secs=30)
    assert done["Status"] == "Cancelled", f"{done}\n{fleet.diag()}"
    assert done["StatusDetails"] == "Cancelled", done
    inv = aws(corral, "ssm", "get-command-invocation", "--command-id", command_id, "--instance-id", mi)
    assert inv["Status"] == "Cancelled", inv
    assert inv["StatusDetails"] == "Cancelled", inv
    listed = aws(corral, "ssm", "list-command-invocations", "--command-id", command_id)["CommandInvocations"]
    assert [(i["InstanceId"], i["Status"]) for i in listed] == [(mi, "Cancelled")]

    # The script really stopped: its shell and the sleep it started are gone.
    deadline = time.time() + 10
    while (pid_alive(shell_pid) or processes_with_args(["sleep", seconds])) and time.time() < deadline:
        time.sleep(0.2)
    assert not pid_alive(shell_pid), f"the script's shell (pid {shell_pid}) still runs after the cancel"
    assert not processes_with_args(["sleep", seconds]), f"`sleep {seconds}` still runs after the cancel"


def test_cli_execution_timeout_ends_the_script(fleet):
    corral = fleet.corral
    mi = fleet["lab2"].instance_id
    started = time.time()
    sent = aws(corral, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", mi,
               "--parameters", 'commands=["sleep 45"],executionTimeout=["2"]')["Command"]
    done = cli_wait_terminal(fleet, sent["CommandId"], secs=30)
    assert time.time() - started < 30
    assert done["Status"] == "TimedOut", f"{done}\n{fleet.diag()}"
    inv = aws(corral, "ssm", "get-command-invocation", "--command-id", sent["CommandId"], "--instance-id", mi)
    assert (inv["Status"], inv["StatusDetails"]) == ("TimedOut", "Execution Timed Out"), inv


# === 3. results, MaxConcurrency and MaxErrors, with boto3 ===


def test_boto3_failing_script_reports_exit_code_and_streams(fleet):
    ssm = fleet.ssm()
    mi = fleet["lab1"].instance_id
    command_id = run_shell(ssm, [mi], ["echo out; echo err >&2; exit 7"])
    done = wait_terminal(fleet, ssm, command_id)
    assert (done["Status"], done["StatusDetails"]) == ("Failed", "Failed"), f"{done}\n{fleet.diag()}"
    assert (done["TargetCount"], done["CompletedCount"], done["ErrorCount"]) == (1, 1, 1), done

    inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=mi)
    assert inv["Status"] == "Failed", inv
    assert inv["StatusDetails"] == "Failed", inv
    assert inv["ResponseCode"] == 7, inv
    assert inv["StandardOutputContent"] == "out\n", inv
    assert inv["StandardErrorContent"] == "err\n", inv


def test_boto3_max_concurrency_one_runs_instances_one_after_the_other(fleet):
    ssm = fleet.ssm()
    ids = [fleet["lab1"].instance_id, fleet["lab2"].instance_id]
    command_id = run_shell(ssm, ids, ["date +%s%N", "sleep 1", "date +%s%N"], MaxConcurrency="1")
    done = wait_terminal(fleet, ssm, command_id)
    assert done["Status"] == "Success", f"{done}\n{fleet.diag()}"
    assert done["MaxConcurrency"] == "1"

    intervals = []
    for mi in ids:
        inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=mi)
        stamps = [int(line) for line in inv["StandardOutputContent"].split()]
        assert len(stamps) == 2 and stamps[0] < stamps[1], inv
        assert stamps[1] - stamps[0] >= 1_000_000_000, inv  # the sleep 1 ran in between
        intervals.append((stamps[0], stamps[1], mi))
    first, second = sorted(intervals)
    assert first[1] <= second[0], f"the two instances ran at the same time: {intervals}"


def test_boto3_max_errors_zero_stops_after_the_first_failure(fleet):
    ssm = fleet.ssm()
    ids = [fleet["lab1"].instance_id, fleet["lab2"].instance_id, fleet["prod"].instance_id]
    command_id = run_shell(ssm, ids, ["exit 1"], MaxConcurrency="1", MaxErrors="0")
    done = wait_terminal(fleet, ssm, command_id)
    assert (done["Status"], done["StatusDetails"]) == ("Failed", "Failed"), f"{done}\n{fleet.diag()}"
    assert done["TargetCount"] == 3 and done["ErrorCount"] == 1, done

    invs = invocations(ssm, command_id)
    assert len(invs) == 3, invs
    failed = [i for i in invs if i["Status"] == "Failed"]
    rest = [i for i in invs if i["Status"] != "Failed"]
    assert len(failed) == 1, [(i["InstanceId"], i["Status"], i["StatusDetails"]) for i in invs]
    assert failed[0]["CommandPlugins"][0]["ResponseCode"] == 1, failed
    assert [i["StatusDetails"] for i in rest] == ["Terminated", "Terminated"], [
        (i["InstanceId"], i["Status"], i["StatusDetails"]) for i in invs
    ]


# === 4. errors, with boto3 (a fresh server: nothing else has sent commands to it) ===


def test_boto3_send_command_errors_leave_no_command(corral):
    key, secret = corral.credentials()
    session = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1")
    ssm = session.client("ssm", endpoint_url=corral.endpoint, verify=str(corral.data_dir / "ca.pem"))
    # Targets matching no instance are valid: only the document or the parameters are wrong.
    lab = [{"Key": "tag:env", "Values": ["lab"]}]

    def code_of(call, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**kw)
        return e.value.response["Error"]["Code"]

    assert code_of(ssm.send_command, DocumentName="No-Such-Document", Targets=lab,
                   Parameters={"commands": ["true"]}) == "InvalidDocument"
    assert code_of(ssm.send_command, DocumentName="AWS-RunShellScript", Targets=lab,
                   Parameters={"commands": ["true"], "notDeclared": ["x"]}) == "InvalidParameters"
    assert code_of(ssm.send_command, DocumentName="AWS-RunShellScript", InstanceIds=["mi-00000000000000000"],
                   Parameters={"commands": ["true"]}) == "InvalidInstanceId"
    assert code_of(ssm.cancel_command, CommandId=str(uuid.uuid4())) == "InvalidCommandId"
    assert ssm.list_commands()["Commands"] == []


# === 5. delivery timeout, with boto3 (stops the `spare` agent) ===


def test_boto3_undelivered_command_times_out(fleet):
    ssm = fleet.ssm()
    spare = fleet["spare"]
    spare.stop()
    # Let the server notice the closed control channel.
    time.sleep(1)
    sent = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[spare.instance_id],
                            Parameters={"commands": ["echo never"]}, TimeoutSeconds=30)["Command"]
    command_id = sent["CommandId"]
    assert sent["TimeoutSeconds"] == 30
    started = time.time()

    time.sleep(4)
    inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=spare.instance_id)
    assert (inv["Status"], inv["StatusDetails"]) == ("Pending", "Pending"), f"{inv}\n{fleet.diag()}"
    assert command(ssm, command_id)["Status"] == "Pending"

    done = wait_terminal(fleet, ssm, command_id, secs=60)
    elapsed = time.time() - started
    assert (done["Status"], done["StatusDetails"]) == ("TimedOut", "Delivery Timed Out"), f"{done}\n{fleet.diag()}"
    assert done["DeliveryTimedOutCount"] == 1, done
    assert (done["TargetCount"], done["CompletedCount"], done["ErrorCount"]) == (1, 1, 0), done
    assert elapsed >= 20, f"timed out after only {elapsed:.0f} s of a 30 s delivery timeout"
    inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=spare.instance_id)
    assert (inv["Status"], inv["StatusDetails"]) == ("TimedOut", "Delivery Timed Out"), inv
    invs = invocations(ssm, command_id)
    assert [(i["Status"], i["StatusDetails"]) for i in invs] == [("TimedOut", "Delivery Timed Out")], invs
