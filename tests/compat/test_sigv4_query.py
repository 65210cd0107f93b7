"""SigV4 on GET query strings: Corral's own GET API (the full-output extension) accepts requests
signed by botocore and by curl's --aws-sigv4, whatever order and encoding the query has."""

import json
import subprocess

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PATH = "/corral/v1/commands/c-unknown/invocations/mi-00000000000000000/output"

# Reserved characters, unsorted names, repeated names, empty values, spaces and '+'.
QUERIES = [
    "stream=stdout&plugin=aws:runShellScript",
    "plugin=aws%3ArunShellScript&stream=stdout",
    "stream=stdout&plugin=a%2Fb%3Dc",
    "plugin=a%20b%2Bc&stream=stdout",
    "plugin=x&plugin=a&stream=stdout",
    "stream=stdout&plugin=",
    "stream=stdout&plugin",
    "z=1&a=2&stream=stdout&m=",
]


def error_type(body: bytes):
    try:
        return json.loads(body).get("__type")
    except ValueError:
        return None


def botocore_get(corral, url, params=None):
    key, secret = corral.credentials()
    request = AWSRequest(method="GET", url=url, params=params or {})
    SigV4Auth(Credentials(key, secret), "ssm", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib3.PoolManager(ca_certs=str(corral.data_dir / "ca.pem"))
    return http.request("GET", prepared.url, headers=dict(prepared.headers))


@pytest.mark.parametrize("query", QUERIES)
def test_botocore_signed_queries_are_accepted(corral, query):
    resp = botocore_get(corral, f"{corral.endpoint}{PATH}?{query}")
    # Authenticated and authorised: the (made-up) invocation is simply not there.
    assert error_type(resp.data) == "InvocationDoesNotExist", resp.data


def test_botocore_params_are_accepted(corral):
    params = {"stream": "stdout", "plugin": "aws:runShellScript / a+b=c"}
    resp = botocore_get(corral, f"{corral.endpoint}{PATH}", params)
    assert error_type(resp.data) == "InvocationDoesNotExist", resp.data


def test_a_query_changed_after_signing_is_refused(corral):
    key, secret = corral.credentials()
    request = AWSRequest(method="GET", url=f"{corral.endpoint}{PATH}?stream=stdout&plugin=a")
    SigV4Auth(Credentials(key, secret), "ssm", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib3.PoolManager(ca_certs=str(corral.data_dir / "ca.pem"))
    tampered = prepared.url.replace("plugin=a", "plugin=b")
    resp = http.request("GET", tampered, headers=dict(prepared.headers))
    assert error_type(resp.data) == "InvalidSignatureException", resp.data


@pytest.mark.parametrize("query", QUERIES)
def test_curl_signed_queries_are_accepted(corral, query):
    key, secret = corral.credentials()
    out = subprocess.run(
        [
            "curl", "-s", "--cacert", str(corral.data_dir / "ca.pem"),
            "--aws-sigv4", "aws:amz:us-east-1:ssm", "--user", f"{key}:{secret}",
            f"{corral.endpoint}{PATH}?{query}",
        ],
        capture_output=True, check=True, timeout=60,
    )
    assert error_type(out.stdout) == "InvocationDoesNotExist", out.stdout
