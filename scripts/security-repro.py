#!/usr/bin/env python3
"""Re-runs the security review's reproductions against a running server and prints what they
cost: data-dir growth from anonymous junk registrations, a CreateDocument with a huge
allowedPattern, a SendCommand with 1,000 pattern-checked values, and 50 half-sent requests.

    target/debug/corral server --data-dir /tmp/repro --listen 127.0.0.1:0 &
    target/compat-venv/bin/python scripts/security-repro.py /tmp/repro

Use a fresh data dir (it creates a role, an activation and documents). Talks only to the
endpoint in the data dir's aws-config (loopback)."""
import json, os, socket, ssl, sys, time, configparser
import boto3, urllib3
data = sys.argv[1]
cfg = configparser.ConfigParser(); cfg.read(os.path.join(data, "aws-config"))
prof = cfg["profile corral"]; endpoint = prof["endpoint_url"]; ca = prof["ca_bundle"]
creds = configparser.ConfigParser(); creds.read(os.path.join(data, "aws-credentials"))
c = creds["corral"]
sess = boto3.Session(aws_access_key_id=c["aws_access_key_id"], aws_secret_access_key=c["aws_secret_access_key"], region_name="us-east-1")
ssm = sess.client("ssm", endpoint_url=endpoint, verify=ca); iam = sess.client("iam", endpoint_url=endpoint, verify=ca)
def size():
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data) if os.path.isfile(os.path.join(data, f)))
http = urllib3.PoolManager(ca_certs=ca)
trust = json.dumps({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]})
iam.create_role(RoleName="R", AssumeRolePolicyDocument=trust)
act = ssm.create_activation(IamRole="R", RegistrationLimit=5)
def register(junk, code):
    body = json.dumps({"ActivationCode": code, "ActivationId": act["ActivationId"], "PublicKey": "x"*392,
                       "PublicKeyType": "Rsa", "Fingerprint": "f", "Junk": "x"*junk})
    return http.request("POST", endpoint + "/", body=body, headers={"Content-Type": "application/x-amz-json-1.1",
                        "X-Amz-Target": "AmazonSSM.RegisterManagedInstance"})
before = size(); t = time.time(); codes = {}
for _ in range(100):
    r = register(2_000_000, "wrong-code-wrong-code"); codes[r.status] = codes.get(r.status, 0) + 1
print(f"100 x 2 MB junk registrations: statuses {codes}, data dir +{size()-before} bytes in {time.time()-t:.2f} s")
before = size(); codes = {}
for _ in range(100):
    r = register(15_000, "wrong-code-wrong-code"); codes[json.loads(r.data).get("__type")] = codes.get(json.loads(r.data).get("__type"), 0) + 1
print(f"100 x 15 KB junk registrations: {codes}, data dir +{size()-before} bytes")
# SendCommand with 1,000 values checked against a pattern (document created once).
doc = {"schemaVersion":"2.2","description":"d","parameters":{"p":{"type":"StringList","allowedPattern":"[a-z0-9]{1,200}"}},
       "mainSteps":[{"action":"aws:runShellScript","name":"s","inputs":{"runCommand":"{{ p }}"}}]}
ssm.create_document(Name="Pattern", DocumentType="Command", Content=json.dumps(doc))
try:
    heavy = dict(doc); heavy["parameters"] = {"p":{"type":"StringList","allowedPattern":"\\w{1,200}"}}
    t = time.time(); ssm.create_document(Name="Heavy", DocumentType="Command", Content=json.dumps(heavy))
except Exception as e:
    print(f"CreateDocument with \\w{{1,200}}: refused in {time.time()-t:.3f} s: {e}")
t = time.time()
try:
    ssm.send_command(DocumentName="Pattern", InstanceIds=["mi-00000000000000000"], Parameters={"p": ["a"*200]*1000})
except Exception as e:
    print(f"SendCommand, 1,000 values x 200 chars against [a-z0-9]{{1,200}}: answered in {time.time()-t:.3f} s ({type(e).__name__}: unknown instance, after the parameter check)")
# Half-sent requests.
ctx = ssl.create_default_context(cafile=ca); host, port = endpoint.split("//")[1].split(":")
socks = []
for _ in range(50):
    s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n"); s.settimeout(60); socks.append(s)
t = time.time(); closed = []
for s in socks:
    try:
        while s.recv(4096): pass
    except Exception: pass
    closed.append(time.time() - t)
print(f"50 half-sent requests: all closed, the last {max(closed):.1f} s after they were sent")
