"""boto3 against Corral: profiles from the data dir, session credentials, modelled errors."""

import os

import boto3
import botocore.exceptions
import pytest

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
