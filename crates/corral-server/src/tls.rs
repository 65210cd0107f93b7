//! TLS for the single HTTPS listener.
//!
//! On first start Corral makes its own certificate authority (`ca.pem`, the file machines and the
//! AWS CLI are told to trust) and a server certificate signed by it for localhost, 127.0.0.1, ::1,
//! the host name and any `--tls-san` names. The CA is name-constrained to those names and lives
//! three years; the server certificate lives 397 days and is renewed at start when it nears its
//! end. Later starts reuse them; when the requested names change within the CA's constraints,
//! only the server certificate is re-issued, so machines that already trust the CA keep
//! working. An operator may bring their own certificate instead (`--tls-cert`/`--tls-key`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, SanType,
};

use crate::files::{write_private_file, write_public_file};

/// File names inside the data dir.
pub const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
/// The names the CA may certify (its name constraints), one per line. Absent for a CA made
/// before Corral constrained its CA.
const CA_NAMES_FILE: &str = "ca-names.txt";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";
/// The names in the server certificate, one per line, and a `not-after:<unix seconds>` line.
const SERVER_SANS_FILE: &str = "server-sans.txt";

/// How long the generated CA is valid. Machines trust it for that long; rotating it means
/// handing them the new `ca.pem` (see the README's security section).
pub const CA_LIFETIME: time::Duration = time::Duration::days(3 * 365);
/// How long a generated server certificate is valid (the CA/Browser Forum's ceiling).
pub const SERVER_CERT_LIFETIME: time::Duration = time::Duration::days(397);
/// A server certificate this close to its end is re-issued at start.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// Where the certificate material in effect lives.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA clients should trust (Corral's own, or `None` when the operator brought a cert).
    pub ca_cert: Option<PathBuf>,
    /// The server certificate chain (PEM).
    pub cert_chain: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
}

/// Makes sure a CA and server certificate exist in `data_dir`, issuing what is missing.
///
/// The CA is name-constrained to the names the server has when it is made (localhost, the
/// loopback addresses, the host name, `--tls-san`): a stolen CA key cannot mint a certificate
/// for any other site machines would then trust. Its key is needed only to issue a server
/// certificate (first start, new names, renewal 30 days before expiry), so an operator may keep
/// `ca-key.pem` offline between those.
pub fn ensure_generated_certificates(data_dir: &Path, extra_sans: &[String]) -> anyhow::Result<TlsMaterial> {
    let ca_cert_path = data_dir.join(CA_CERT_FILE);
    let ca_key_path = data_dir.join(CA_KEY_FILE);
    let ca_names_path = data_dir.join(CA_NAMES_FILE);
    let mut wanted = wanted_sans(extra_sans);
    let now = time::OffsetDateTime::now_utc();
    if !ca_cert_path.exists() {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = ca_params();
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: wanted.iter().map(|n| subtree_for(n)).collect::<anyhow::Result<Vec<_>>>()?,
            excluded_subtrees: Vec::new(),
        });
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + CA_LIFETIME;
        let cert = params.self_signed(&key).context("self-signing the CA")?;
        write_private_file(&ca_key_path, key.serialize_pem().as_bytes())?;
        write_public_file(&ca_cert_path, cert.pem().as_bytes())?;
        write_public_file(&ca_names_path, lines(&wanted).as_bytes())?;
        // A new CA invalidates any older server certificate.
        let _ = std::fs::remove_file(data_dir.join(SERVER_CERT_FILE));
    }

    // The names the CA may certify; a name outside them cannot be in a certificate it signs.
    if let Ok(permitted) = std::fs::read_to_string(&ca_names_path) {
        let permitted: BTreeSet<String> = permitted.lines().map(str::to_string).collect();
        let outside: Vec<String> = wanted.difference(&permitted).cloned().collect();
        let asked: BTreeSet<String> = extra_sans.iter().map(|n| n.trim().to_string()).collect();
        if let Some(name) = outside.iter().find(|n| asked.contains(*n)) {
            bail!(
                "--tls-san {name} is not among the names Corral's CA may certify ({}). To add names, rotate the CA: \
                 stop Corral, move {CA_CERT_FILE} and {CA_KEY_FILE} out of the data dir, start again with every \
                 --tls-san you need, and give machines the new {CA_CERT_FILE}.",
                permitted.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        if !outside.is_empty() {
            // The host name changed since the CA was made: serve the names the CA covers.
            tracing::warn!(names = ?outside, "left out of the server certificate: the CA's name constraints do not cover them");
            wanted.retain(|n| permitted.contains(n));
        }
    }

    let sans_path = data_dir.join(SERVER_SANS_FILE);
    let recorded = std::fs::read_to_string(&sans_path).unwrap_or_default();
    let not_after = recorded
        .lines()
        .find_map(|l| l.strip_prefix("not-after:"))
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
    let recorded: BTreeSet<String> =
        recorded.lines().filter(|l| !l.starts_with("not-after:")).map(str::to_string).collect();
    let expiring = not_after.is_none_or(|t| t - now < RENEW_BEFORE);
    let cert_path = data_dir.join(SERVER_CERT_FILE);
    let key_path = data_dir.join(SERVER_KEY_FILE);
    if !cert_path.exists() || !key_path.exists() || recorded != wanted || expiring {
        let ca_key_pem = std::fs::read_to_string(&ca_key_path).with_context(|| {
            format!(
                "a new server certificate is needed (first start, new names or renewal) and the CA key {} is not \
                 there: put it back for this start, or bring your own certificate with --tls-cert/--tls-key",
                ca_key_path.display()
            )
        })?;
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing the CA key")?;
        let ca_pem = std::fs::read_to_string(&ca_cert_path).context("reading the CA certificate")?;
        // The issuer is rebuilt from the same parameters the CA was made with (its subject name
        // and key usages) and its stored key: that is all signing a leaf needs, without
        // parsing the CA certificate back.
        let issuer = Issuer::new(ca_params(), ca_key);

        let key = KeyPair::generate().context("generating the server key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Corral control plane");
        params.distinguished_name = dn;
        params.subject_alt_names = wanted.iter().map(|name| san_for(name)).collect::<anyhow::Result<Vec<_>>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + SERVER_CERT_LIFETIME;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;
        write_private_file(&key_path, key.serialize_pem().as_bytes())?;
        // The chain carries the CA too, so clients that only pin the CA still build the path.
        let chain = format!("{}{}", cert.pem(), ca_pem);
        write_public_file(&cert_path, chain.as_bytes())?;
        let listing = format!("{}not-after:{}\n", lines(&wanted), params.not_after.unix_timestamp());
        write_public_file(&sans_path, listing.as_bytes())?;
    }
    Ok(TlsMaterial { ca_cert: Some(ca_cert_path), cert_chain: cert_path, key: key_path })
}

fn lines(names: &BTreeSet<String>) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// A name constraint permitting exactly `name` (a DNS name and its subdomains, or one address).
fn subtree_for(name: &str) -> anyhow::Result<GeneralSubtree> {
    Ok(match name.parse::<std::net::IpAddr>() {
        Ok(ip) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, if ip.is_ipv4() { 32 } else { 128 })),
        // A wildcard's constraint is its parent domain.
        Err(_) => GeneralSubtree::DnsName(name.strip_prefix("*.").unwrap_or(name).to_string()),
    })
}

/// The CA's subject and key usages, identical each time so a leaf names the stored CA as issuer.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Corral local CA");
    dn.push(DnType::OrganizationName, "Corral");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn wanted_sans(extra: &[String]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["localhost", "127.0.0.1", "::1"].iter().map(|s| s.to_string()).collect();
    if let Some(host) = local_host_name() {
        names.insert(host);
    }
    for n in extra {
        let n = n.trim();
        if !n.is_empty() {
            names.insert(n.to_string());
        }
    }
    names
}

fn san_for(name: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name.to_string().try_into().map_err(|e| anyhow!("invalid --tls-san name {name:?}: {e}"))?;
    Ok(SanType::DnsName(dns))
}

/// The machine's host name, when it is a usable DNS name.
pub fn local_host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())?;
    let host = raw.trim().to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    valid.then_some(host)
}

/// Builds the rustls server configuration (TLS 1.2 and 1.3 only, HTTP/1.1 via ALPN).
pub fn server_config(material: &TlsMaterial) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain_pem =
        std::fs::read(&material.cert_chain).with_context(|| format!("reading {}", material.cert_chain.display()))?;
    let certs = rustls_pemfile::certs(&mut chain_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", material.cert_chain.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", material.cert_chain.display());
    }
    let key_pem = std::fs::read(&material.key).with_context(|| format!("reading {}", material.key.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("parsing {}", material.key.display()))?
        .ok_or_else(|| anyhow!("{} holds no private key", material.key.display()))?;
    let mut config =
        rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("building the TLS configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
