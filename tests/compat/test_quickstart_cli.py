"""The README's quickstart, run with the AWS CLI exactly as a new user would."""

import json
import os
import shutil
import subprocess

from conftest import ROOT

TIER = "/ssm/managed-instance/activation-tier"


def aws(corral, *args, check=True):
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_get_caller_identity(corral):
    out = json.loads(aws(corral, "sts", "get-caller-identity").stdout)
    assert out["Account"] == corral.account_id
    assert out["Arn"] == f"arn:aws:iam::{corral.account_id}:user/admin"
    assert out["UserId"].startswith("AIDA")


def test_activation_tier_round_trip(corral):
    out = json.loads(aws(corral, "ssm", "get-service-setting", "--setting-id", TIER).stdout)
    assert out["ServiceSetting"]["SettingValue"] == "standard"
    assert out["ServiceSetting"]["Status"] == "Default"

    aws(corral, "ssm", "update-service-setting", "--setting-id", TIER, "--setting-value", "advanced")
    arn = f"arn:aws:ssm:us-east-1:{corral.account_id}:servicesetting{TIER}"
    out = json.loads(aws(corral, "ssm", "get-service-setting", "--setting-id", arn).stdout)
    assert out["ServiceSetting"]["SettingValue"] == "advanced"
    assert out["ServiceSetting"]["Status"] == "Customized"
    assert out["ServiceSetting"]["LastModifiedUser"].endswith(":user/admin")

    out = json.loads(aws(corral, "ssm", "reset-service-setting", "--setting-id", TIER).stdout)
    assert out["ServiceSetting"]["SettingValue"] == "standard"


def test_cli_reports_aws_errors(corral):
    proc = aws(corral, "ssm", "get-service-setting", "--setting-id", "/ssm/not/a/setting", check=False)
    assert proc.returncode == 255
    assert "(ServiceSettingNotFound)" in proc.stderr
    assert "GetServiceSetting operation" in proc.stderr

    proc = aws(corral, "ssm", "update-service-setting", "--setting-id", TIER, "--setting-value", "gold", check=False)
    assert proc.returncode == 255
    assert "(ValidationException)" in proc.stderr


def test_cli_with_a_wrong_secret_is_refused(corral, tmp_path):
    key, _ = corral.credentials()
    creds = tmp_path / "bad-credentials"
    creds.write_text(f"[corral]\naws_access_key_id = {key}\naws_secret_access_key = {'x' * 40}\n")
    env = corral.cli_env
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    proc = subprocess.run(["aws", "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 255
    assert "(SignatureDoesNotMatch)" in proc.stderr


def test_corral_env_works_even_where_aws_ca_bundle_is_exported(corral, tmp_path):
    """Machines that export AWS_CA_BUNDLE (corporate proxies) break the profile's ca_bundle;
    `eval "$(corral env)"` sets everything, that variable included."""
    binary = os.environ.get("CORRAL_BIN", str(ROOT / "target" / "debug" / "corral"))
    # A bundle of public CAs, as a corporate setup exports; it does not hold Corral's CA.
    other_ca = tmp_path / "corporate-ca.pem"
    system = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(system):
        shutil.copy(system, other_ca)
    else:
        other_ca.write_text("")
    env = corral.cli_env
    env["AWS_CA_BUNDLE"] = str(other_ca)
    # The trap: the profile alone loses to the exported bundle.
    trapped = subprocess.run(["aws", "sts", "get-caller-identity"], env=env, capture_output=True, text=True, timeout=120)
    assert trapped.returncode != 0, trapped.stdout
    # The fix, from any directory, for the data dir given.
    script = f'eval "$("{binary}" env --data-dir "{corral.data_dir}")" && aws sts get-caller-identity'
    fixed = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["Account"] == corral.account_id
    printed = subprocess.run([binary, "env", "--data-dir", str(corral.data_dir), "--shell", "fish"],
                             capture_output=True, text=True, check=True).stdout
    assert f"set -gx AWS_CA_BUNDLE '{corral.data_dir / 'ca.pem'}'" in printed
