"""The README's quickstart, run with the AWS CLI exactly as a new user would."""

import json
import subprocess

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
