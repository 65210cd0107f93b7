//! Test harness: starts the real `corral` binary on an ephemeral port with its own data dir and
//! gives tests real clients for it (the AWS SDK for Rust, and raw signed HTTPS requests).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};

/// A running `corral server`.
pub struct TestServer {
    child: Option<Child>,
    /// The data dir it runs on.
    pub data_dir: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub endpoint: String,
    /// `127.0.0.1:<port>`, the Host header clients send.
    pub host: String,
    /// The account ID it reported.
    pub account_id: String,
    /// Everything it printed on stdout before it was ready.
    pub banner: Vec<String>,
    /// Where its stderr goes.
    pub log_path: PathBuf,
}

/// Options for starting a server.
#[derive(Default, Clone)]
pub struct StartOptions {
    /// Extra command-line arguments after `server`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

pub fn corral_bin() -> &'static str {
    env!("CARGO_BIN_EXE_corral")
}

/// When set (by the test command), server tests also run against this PostgreSQL admin URL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("CORRAL_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty())
}

impl TestServer {
    /// Starts a server on a fresh temporary data dir.
    pub fn start_fresh() -> (tempfile::TempDir, TestServer) {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = TestServer::start(dir.path(), StartOptions::default()).expect("server starts");
        (dir, server)
    }

    /// Starts a server on `data_dir`; returns the error output if it exits before it is ready.
    pub fn start(data_dir: &Path, options: StartOptions) -> Result<TestServer, String> {
        corral_server_crypto();
        let log_path = data_dir.with_extension(format!("log.{}", std::process::id()));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(corral_bin());
        cmd.arg("server").arg("--data-dir").arg(data_dir);
        if !options.args.iter().any(|a| a == "--listen") {
            cmd.arg("--listen").arg("127.0.0.1:0");
        }
        cmd.args(&options.args)
            .env_remove("CORRAL_DATA_DIR")
            .env_remove("CORRAL_ADMIN_ACCESS_KEY_ID")
            .env_remove("CORRAL_ADMIN_SECRET_ACCESS_KEY")
            .env("CORRAL_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    // Keep draining so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let mut banner = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(remaining.min(Duration::from_millis(200))) {
                Ok(line) => {
                    // The banner ends with the quickstart's first command.
                    let last = line.contains("aws sts get-caller-identity");
                    banner.push(line);
                    if last {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("corral exited with {status} before it was ready:\n{log}"));
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                return Err("corral did not become ready within 60 s".into());
            }
        }
        let first = banner.iter().find(|l| l.starts_with("corral: listening on ")).cloned().unwrap_or_default();
        // "corral: listening on https://127.0.0.1:PORT (account 123456789012, region us-east-1)"
        let endpoint = first.split_whitespace().nth(3).unwrap_or_default().to_string();
        let account_id =
            first.split("(account ").nth(1).and_then(|s| s.split(',').next()).unwrap_or_default().to_string();
        let host = endpoint.trim_start_matches("https://").to_string();
        Ok(TestServer {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            endpoint,
            host,
            account_id,
            banner,
            log_path,
        })
    }

    /// The admin key pair from the `aws-credentials` file the server wrote.
    pub fn admin_credentials(&self) -> (String, String) {
        read_credentials_file(&self.data_dir.join("aws-credentials"))
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("ca.pem")).expect("ca.pem")
    }

    /// SDK configuration for this server with the given credentials.
    pub fn sdk_config_with(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: Option<&str>,
    ) -> aws_config::SdkConfig {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .tls_context(
                TlsContext::builder()
                    .with_trust_store(TrustStore::empty().with_pem_certificate(self.ca_pem()))
                    .build()
                    .expect("tls context"),
            )
            .build_https();
        let creds = Credentials::new(access_key_id, secret, session_token.map(str::to_string), None, "corral-test");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
            .http_client(http_client)
            .build()
    }

    /// SDK configuration with the admin credentials.
    pub fn admin_sdk_config(&self) -> aws_config::SdkConfig {
        let (id, secret) = self.admin_credentials();
        self.sdk_config_with(&id, &secret, None)
    }

    /// An SSM client with the admin credentials.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.admin_sdk_config())
    }

    /// An STS client with the admin credentials.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.admin_sdk_config())
    }

    /// A raw HTTPS client trusting this server's CA.
    pub fn http(&self) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(&self.ca_pem()).expect("ca cert");
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client")
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            #[cfg(unix)]
            {
                let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL (a crash) and reaps it.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn corral_server_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Reads `aws_access_key_id` / `aws_secret_access_key` from an AWS credentials file.
pub fn read_credentials_file(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("credentials file");
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} missing from {}", path.display()))
    };
    (get("aws_access_key_id"), get("aws_secret_access_key"))
}

/// A request to sign and send by hand, for the tests that need control over every byte.
pub struct RawRequest {
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// An AWS JSON 1.1 call to an SSM operation.
    pub fn ssm(server: &TestServer, operation: &str, body: &str) -> RawRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", server.host.parse().expect("host"));
        headers.insert("content-type", "application/x-amz-json-1.1".parse().expect("ct"));
        headers.insert("x-amz-target", format!("AmazonSSM.{operation}").parse().expect("target"));
        RawRequest { headers, body: body.as_bytes().to_vec() }
    }

    /// An AWS JSON 1.1 call with any `X-Amz-Target` (`EC2WindowsMessageDeliveryService.GetMessages`).
    pub fn json(server: &TestServer, target: &str, body: &str) -> RawRequest {
        let mut req = RawRequest::ssm(server, "x", body);
        req.headers.insert("x-amz-target", target.parse().expect("target"));
        req
    }

    /// A Query call (form body).
    pub fn query(server: &TestServer, form: &str) -> RawRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", server.host.parse().expect("host"));
        headers.insert("content-type", "application/x-www-form-urlencoded; charset=utf-8".parse().expect("ct"));
        RawRequest { headers, body: form.as_bytes().to_vec() }
    }

    /// Signs with SigV4 for `service` at time `at`.
    pub fn sign(
        mut self,
        key_id: &str,
        secret: &str,
        token: Option<&str>,
        service: &str,
        at: time::OffsetDateTime,
    ) -> RawRequest {
        let creds = corral_wire::sigv4::Credentials {
            access_key_id: key_id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: token.map(str::to_string),
        };
        corral_wire::sigv4::sign_request(
            "POST",
            "/",
            "",
            &mut self.headers,
            &self.body,
            &creds,
            "us-east-1",
            service,
            at,
        )
        .expect("signing");
        self
    }

    /// The request as bytes on the wire, with `framing` (header lines ending in CRLF, e.g.
    /// `Content-Length: 12\r\n`) after the signed headers and `body` as the body.
    pub fn to_wire(&self, framing: &str, body: &[u8]) -> Vec<u8> {
        let mut head = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in self.headers.iter() {
            head.push_str(&format!("{}: {}\r\n", name, value.to_str().expect("ascii header")));
        }
        head.push_str(framing);
        head.push_str("\r\n");
        [head.as_bytes(), body].concat()
    }

    /// Sends it; returns status, the `__type`/`Code` and the body text.
    pub async fn send(self, server: &TestServer) -> RawResponse {
        let mut req = server.http().post(format!("{}/", server.endpoint)).body(self.body);
        for (name, value) in self.headers.iter() {
            if name != "host" {
                req = req.header(name.as_str(), value.as_bytes());
            }
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let request_id = resp.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = resp.text().await.unwrap_or_default();
        RawResponse { status, text, request_id }
    }
}

/// A TLS connection to the server (trusting its CA), for tests that write every byte.
pub async fn tls_connect(server: &TestServer) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut server.ca_pem().as_slice()) {
        roots.add(cert.expect("ca")).expect("root");
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(&server.host).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    connector.connect(name, tcp).await.expect("tls")
}

/// Writes `bytes` on a new connection and reads until the server closes it (or `within`
/// passes): what came back, and whether the server closed the connection.
pub async fn exchange_raw(server: &TestServer, bytes: &[u8], within: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tls_connect(server).await;
    stream.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// What came back from a raw request.
pub struct RawResponse {
    pub status: u16,
    pub text: String,
    pub request_id: Option<String>,
}

impl RawResponse {
    /// The error code: `__type` of a JSON error or `<Code>` of a Query error.
    pub fn error_code(&self) -> Option<String> {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&self.text) {
            return v.get("__type").and_then(|t| t.as_str()).map(str::to_string);
        }
        let start = self.text.find("<Code>")? + "<Code>".len();
        let end = self.text[start..].find("</Code>")? + start;
        Some(self.text[start..end].to_string())
    }
}

// === Hybrid setup helpers ===

/// The trust policy a hybrid instance role needs.
pub const SSM_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ssm.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Percent-encodes a form value.
pub fn form_encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl TestServer {
    /// Sends an IAM Query call signed with the admin key.
    pub async fn iam(&self, form: &str) -> RawResponse {
        let (key, secret) = self.admin_credentials();
        RawRequest::query(self, &format!("{form}&Version=2010-05-08"))
            .sign(&key, &secret, None, "iam", time::OffsetDateTime::now_utc())
            .send(self)
            .await
    }

    /// Creates a role trusting ssm.amazonaws.com with AmazonSSMManagedInstanceCore attached.
    pub async fn create_instance_role(&self, name: &str) {
        let resp = self
            .iam(&format!(
                "Action=CreateRole&RoleName={name}&AssumeRolePolicyDocument={}",
                form_encode(SSM_TRUST_POLICY)
            ))
            .await;
        assert_eq!(resp.status, 200, "CreateRole: {}", resp.text);
        let resp = self
            .iam(&format!(
                "Action=AttachRolePolicy&RoleName={name}&PolicyArn={}",
                form_encode("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
            ))
            .await;
        assert_eq!(resp.status, 200, "AttachRolePolicy: {}", resp.text);
    }

    /// Creates an activation; returns (id, code).
    pub async fn create_activation(
        &self,
        role: &str,
        limit: i32,
        name: Option<&str>,
        tags: &[(&str, &str)],
    ) -> (String, String) {
        let mut req = self.ssm().create_activation().iam_role(role).registration_limit(limit);
        if let Some(n) = name {
            req = req.default_instance_name(n);
        }
        for (k, v) in tags {
            req = req.tags(aws_sdk_ssm::types::Tag::builder().key(*k).value(*v).build().expect("tag"));
        }
        let out = req.send().await.expect("CreateActivation");
        (out.activation_id().expect("id").to_string(), out.activation_code().expect("code").to_string())
    }
}

/// A machine's identity as the agent keeps it: key pair and fingerprint.
pub struct MachineIdentity {
    pub key: rsa::PrivateKey,
    pub public_key: String,
    pub fingerprint: String,
}

impl MachineIdentity {
    pub fn generate() -> MachineIdentity {
        let key = corral_wire::keys::generate_rsa_2048().expect("rsa key");
        let public_key = corral_wire::keys::public_key_to_spki_base64(&key.to_public_key());
        MachineIdentity { key, public_key, fingerprint: format!("fp-{}", std::process::id()) }
    }
}

/// `RegisterManagedInstance` as the agent sends it (unsigned).
pub async fn register_raw(server: &TestServer, id: &str, code: &str, machine: &MachineIdentity) -> RawResponse {
    let body = serde_json::json!({
        "ActivationCode": code, "ActivationId": id, "PublicKey": machine.public_key,
        "PublicKeyType": "Rsa", "Fingerprint": machine.fingerprint,
    });
    RawRequest::ssm(server, "RegisterManagedInstance", &body.to_string()).send(server).await
}

/// An SSM call signed with the instance's RSA key, as the agent signs it.
pub async fn rsa_call(
    server: &TestServer,
    operation: &str,
    body: &str,
    instance_id: &str,
    key: &rsa::PrivateKey,
    at: time::OffsetDateTime,
) -> RawResponse {
    let mut req = RawRequest::ssm(server, operation, body);
    corral_wire::sigv4::sign_request_rsa(
        "POST",
        "/",
        "",
        &mut req.headers,
        &req.body,
        instance_id,
        key,
        "us-east-1",
        at,
    )
    .expect("rsa signing");
    req.send(server).await
}

/// Registered and holding role credentials.
pub struct RegisteredInstance {
    pub instance_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Registers a machine and gets its first role token.
pub async fn register_and_get_token(
    server: &TestServer,
    id: &str,
    code: &str,
    machine: &MachineIdentity,
) -> RegisteredInstance {
    let resp = register_raw(server, id, code, machine).await;
    assert_eq!(resp.status, 200, "register: {}", resp.text);
    let v: serde_json::Value = serde_json::from_str(&resp.text).expect("json");
    let instance_id = v["InstanceId"].as_str().expect("InstanceId").to_string();
    let body = serde_json::json!({"Fingerprint": machine.fingerprint}).to_string();
    let resp = rsa_call(
        server,
        "RequestManagedInstanceRoleToken",
        &body,
        &instance_id,
        &machine.key,
        time::OffsetDateTime::now_utc(),
    )
    .await;
    assert_eq!(resp.status, 200, "role token: {}", resp.text);
    let v: serde_json::Value = serde_json::from_str(&resp.text).expect("json");
    assert_eq!(v["UpdateKeyPair"], serde_json::Value::Bool(false));
    RegisteredInstance {
        instance_id,
        access_key_id: v["AccessKeyId"].as_str().expect("AccessKeyId").to_string(),
        secret_access_key: v["SecretAccessKey"].as_str().expect("SecretAccessKey").to_string(),
        session_token: v["SessionToken"].as_str().expect("SessionToken").to_string(),
    }
}

/// The health ping with the instance's role credentials.
pub async fn ping(server: &TestServer, inst: &RegisteredInstance, body: serde_json::Value) -> RawResponse {
    RawRequest::ssm(server, "UpdateInstanceInformation", &body.to_string())
        .sign(
            &inst.access_key_id,
            &inst.secret_access_key,
            Some(&inst.session_token),
            "ssm",
            time::OffsetDateTime::now_utc(),
        )
        .send(server)
        .await
}

// === Real agents ===

/// The `corral-agent` binary beside `corral` (built by the test command before the tests:
/// cargo only builds a package's own binaries for its integration tests).
pub fn agent_bin() -> std::path::PathBuf {
    let path = Path::new(corral_bin()).with_file_name(format!("corral-agent{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p corral-agent` first (scripts/test does)",
        path.display()
    );
    path
}

/// A free TCP port on loopback, for a server that must keep its address across restarts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A `corral-agent` with its own state dir.
pub struct TestAgent {
    pub state_dir: PathBuf,
    pub instance_id: String,
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl TestAgent {
    /// Runs `corral-agent register`; returns the agent or the command's stderr.
    pub fn register(server: &TestServer, state_dir: &Path, id: &str, code: &str) -> Result<TestAgent, String> {
        let out = Command::new(agent_bin())
            .args(["register", "--code", code, "--id", id, "--region", "us-east-1", "--endpoint", &server.endpoint])
            .arg("--ca-bundle")
            .arg(server.data_dir.join("ca.pem"))
            .arg("--state-dir")
            .arg(state_dir)
            .env_remove("CORRAL_AGENT_STATE_DIR")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        let instance_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(TestAgent {
            state_dir: state_dir.to_path_buf(),
            instance_id,
            child: None,
            log_path: state_dir.with_extension("agent.log"),
        })
    }

    /// Starts `corral-agent run` pinging every `ping_secs` seconds.
    pub fn run(&mut self, ping_secs: u32) {
        let log = std::fs::File::create(&self.log_path).expect("agent log");
        let child = Command::new(agent_bin())
            .args(["run", "--ping-interval-secs", &ping_secs.to_string()])
            .arg("--state-dir")
            .arg(&self.state_dir)
            .env("CORRAL_AGENT_LOG", "info")
            // Tests restart servers: reconnect the control channel in a fraction of a second
            // instead of the production 5–10 s.
            .env("CORRAL_AGENT_RECONNECT_MIN_MS", "200")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("corral-agent run");
        self.child = Some(child);
    }

    /// Kills the `run` process with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `corral-agent status` output.
    pub fn status(&self) -> String {
        let out =
            Command::new(agent_bin()).arg("status").arg("--state-dir").arg(&self.state_dir).output().expect("status");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Is the `run` process alive?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 200 ms until it returns true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

// === Users with policies, and the trail ===

/// Creates a user with the given managed policies and inline policy; returns its key pair.
pub async fn user(server: &TestServer, name: &str, managed: &[&str], inline: Option<&str>) -> (String, String) {
    let r = server.iam(&format!("Action=CreateUser&UserName={name}")).await;
    assert_eq!(r.status, 200, "CreateUser: {}", r.text);
    for arn in managed {
        let r = server.iam(&format!("Action=AttachUserPolicy&UserName={name}&PolicyArn={}", form_encode(arn))).await;
        assert_eq!(r.status, 200, "AttachUserPolicy: {}", r.text);
    }
    if let Some(doc) = inline {
        let r = server
            .iam(&format!("Action=PutUserPolicy&UserName={name}&PolicyName=inline&PolicyDocument={}", form_encode(doc)))
            .await;
        assert_eq!(r.status, 200, "PutUserPolicy: {}", r.text);
    }
    let r = server.iam(&format!("Action=CreateAccessKey&UserName={name}")).await;
    assert_eq!(r.status, 200, "CreateAccessKey: {}", r.text);
    let pick = |tag: &str| {
        let start = r.text.find(&format!("<{tag}>")).expect(tag) + tag.len() + 2;
        let end = r.text[start..].find(&format!("</{tag}>")).expect(tag) + start;
        r.text[start..end].to_string()
    };
    (pick("AccessKeyId"), pick("SecretAccessKey"))
}

pub fn ssm_as(server: &TestServer, key: &(String, String)) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&server.sdk_config_with(&key.0, &key.1, None))
}

/// Reads the whole trail (all pages) through LookupEvents with one attribute (or none).
pub async fn trail_lookup(server: &TestServer, key: &str, value: &str) -> Vec<serde_json::Value> {
    let (k, s) = server.admin_credentials();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = serde_json::json!({"MaxResults": 7});
        if !key.is_empty() {
            body["LookupAttributes"] = serde_json::json!([{"AttributeKey": key, "AttributeValue": value}]);
        }
        if let Some(t) = &token {
            body["NextToken"] = serde_json::json!(t);
        }
        let mut req = RawRequest::ssm(server, "x", &body.to_string());
        req.headers.insert(
            "x-amz-target",
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".parse().expect("target"),
        );
        let resp = req.sign(&k, &s, None, "cloudtrail", time::OffsetDateTime::now_utc()).send(server).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let v: serde_json::Value = serde_json::from_str(&resp.text).expect("json");
        for e in v["Events"].as_array().expect("Events") {
            out.push(serde_json::from_str(e["CloudTrailEvent"].as_str().expect("record")).expect("record json"));
        }
        match v["NextToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    out
}
