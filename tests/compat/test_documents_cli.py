"""SSM documents with the AWS CLI: create from a YAML file, describe, list, get in another format."""

import json
import subprocess

RESTART = """schemaVersion: "2.2"
description: Restart a service
parameters:
  svc:
    type: String
    default: nginx
    description: Service name
    allowedValues: [nginx, sshd]
mainSteps:
  - action: aws:runShellScript
    name: restart
    inputs:
      runCommand:
        - systemctl restart {{ svc }}
"""


def aws(corral, *args, check=True):
    proc = subprocess.run(["aws", *args], env=corral.cli_env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def test_create_describe_list_documents(corral, tmp_path):
    doc = tmp_path / "doc.yaml"
    doc.write_text(RESTART)
    created = json.loads(
        aws(
            corral, "ssm", "create-document", "--content", f"file://{doc}", "--name", "Restart",
            "--document-type", "Command", "--document-format", "YAML", "--tags", "Key=team,Value=ops",
        ).stdout
    )["DocumentDescription"]
    assert created["Name"] == "Restart"
    assert created["Owner"] == corral.account_id
    assert created["DocumentVersion"] == "1" and created["DefaultVersion"] == "1" and created["LatestVersion"] == "1"
    assert created["SchemaVersion"] == "2.2" and created["DocumentFormat"] == "YAML"
    assert created["HashType"] == "Sha256" and len(created["Hash"]) == 64
    assert created["PlatformTypes"] == ["Linux", "MacOS"]
    assert created["Parameters"] == [
        {"Name": "svc", "Type": "String", "Description": "Service name", "DefaultValue": "nginx"}
    ]

    described = json.loads(aws(corral, "ssm", "describe-document", "--name", "Restart").stdout)["Document"]
    assert described["Status"] == "Active"
    assert described["Description"] == "Restart a service"
    assert described["Tags"] == [{"Key": "team", "Value": "ops"}]

    mine = json.loads(aws(corral, "ssm", "list-documents", "--filters", "Key=Owner,Values=Self").stdout)
    assert [d["Name"] for d in mine["DocumentIdentifiers"]] == ["Restart"]
    everyone = json.loads(aws(corral, "ssm", "list-documents").stdout)["DocumentIdentifiers"]
    assert {"AWS-RunShellScript", "AWS-RunPowerShellScript", "Restart"} <= {d["Name"] for d in everyone}

    as_json = json.loads(aws(corral, "ssm", "get-document", "--name", "Restart", "--document-format", "JSON").stdout)
    assert as_json["DocumentFormat"] == "JSON"
    assert json.loads(as_json["Content"])["mainSteps"][0]["name"] == "restart"

    shell = json.loads(aws(corral, "ssm", "describe-document", "--name", "AWS-RunShellScript").stdout)["Document"]
    assert shell["Owner"] == "Amazon" and shell["SchemaVersion"] == "1.2"
    assert [p["Name"] for p in shell["Parameters"]] == ["commands", "workingDirectory", "executionTimeout"]


def test_document_errors(corral, tmp_path):
    doc = tmp_path / "doc.yaml"
    doc.write_text(RESTART)
    args = ["ssm", "create-document", "--content", f"file://{doc}", "--name", "Restart", "--document-format", "YAML"]
    aws(corral, *args)
    proc = aws(corral, *args, check=False)
    assert proc.returncode == 254 or proc.returncode == 255
    assert "(DocumentAlreadyExists)" in proc.stderr
    proc = aws(corral, "ssm", "describe-document", "--name", "Nope", check=False)
    assert "(InvalidDocument)" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(RESTART.replace("{{ svc }}", "{{ service }}"))
    proc = aws(corral, "ssm", "create-document", "--content", f"file://{bad}", "--name", "Bad", "--document-format", "YAML", check=False)
    assert "(InvalidDocumentContent)" in proc.stderr
    proc = aws(corral, "ssm", "delete-document", "--name", "Restart", "--document-version", "1", check=False)
    assert "(InvalidDocumentOperation)" in proc.stderr
    aws(corral, "ssm", "delete-document", "--name", "Restart")
