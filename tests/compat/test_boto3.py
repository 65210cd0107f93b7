"""boto3 against Corral: profiles from the data dir, session credentials, modelled errors."""

import os

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import start_corral

TIER = "/ssm/managed-instance/activation-tier"


def session(corral):
    """A boto3 session on the profile the server wrote, as the README's quickstart sets it up."""
    os.environ["AWS_CONFIG_FILE"] = str(corral.data_dir / "aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(corral.data_dir / "aws-credentials")
    return boto3.Session(profile_name="corral")


def test_profile_from_data_dir_works(corral):
    s = session(corral)
    assert s.client("sts").get_caller_identity()["Account"] == corral.account_id
    got = s.client("ssm").get_service_setting(SettingId=TIER)
    assert got["ServiceSetting"]["SettingValue"] == "standard"
    assert got["ResponseMetadata"]["RequestId"]


def test_session_token_credentials(corral):
    s = session(corral)
    creds = s.client("sts").get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    temp = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    )
    kw = dict(endpoint_url=corral.endpoint, verify=str(corral.data_dir / "ca.pem"))
    who = temp.client("sts", **kw).get_caller_identity()
    assert who["Arn"].endswith(":user/admin")
    temp.client("ssm", **kw).update_service_setting(SettingId=TIER, SettingValue="advanced")
    got = s.client("ssm").get_service_setting(SettingId=TIER)["ServiceSetting"]
    assert got["SettingValue"] == "advanced"


def test_modelled_errors(corral):
    ssm = session(corral).client("ssm")
    with pytest.raises(ssm.exceptions.ServiceSettingNotFound):
        ssm.get_service_setting(SettingId="/ssm/does/not/exist")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.get_service_setting(SettingId="/" + "a" * 1000)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 1000" in e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_key_is_unrecognized(corral):
    kw = dict(endpoint_url=corral.endpoint, verify=str(corral.data_dir / "ca.pem"), region_name="eu-west-1")
    ssm = boto3.client("ssm", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40, **kw)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.get_service_setting(SettingId=TIER)
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    sts = boto3.client("sts", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40, **kw)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_a_burst_over_the_rate_limit_completes_with_standard_retries(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    server = start_corral(tmp_path / "corral-data", "--throttle-read", "5/5")
    try:
        s = session(server)
        retrying = botocore.config.Config(retries={"mode": "standard", "max_attempts": 10})
        ssm = s.client("ssm", config=retrying)
        attempts = [ssm.get_service_setting(SettingId=TIER)["ResponseMetadata"]["RetryAttempts"] for _ in range(15)]
        # Every call completed; past the burst of 5, some needed retries.
        assert len(attempts) == 15
        assert sum(1 for a in attempts if a > 0) >= 1, attempts

        # Without retries the throttled call is refused as AWS does, in each protocol's envelope.
        once = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})
        codes = set()
        for client, call in [
            (s.client("ssm", config=once), lambda c: c.get_service_setting(SettingId=TIER)),
            (s.client("sts", config=once), lambda c: c.get_caller_identity()),
        ]:
            for _ in range(12):
                try:
                    call(client)
                except botocore.exceptions.ClientError as e:
                    codes.add(e.response["Error"]["Code"])
                    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
                    assert e.response["ResponseMetadata"]["RequestId"]
                    break
        assert codes == {"ThrottlingException", "Throttling"}, codes
        # Writes have their own bucket: still allowed.
        s.client("ssm", config=once).update_service_setting(SettingId=TIER, SettingValue="advanced")
    finally:
        server.stop()
