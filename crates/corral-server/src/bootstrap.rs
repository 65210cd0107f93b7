//! First start and every later start: the data dir, the store, the account, the admin user and
//! the files the AWS CLI reads.
//!
//! First start creates everything; later starts reuse it and regenerate nothing (the CLI config
//! is rewritten because it names the address the server listens on now).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use corral_store::{AccessKey, AccessKeyStatus, Account, IamEntity, IamUser, Store};
use time::OffsetDateTime;

use crate::config::ServerConfig;
use crate::files::{ensure_private_dir, write_private_file, write_public_file};
use crate::ids;
use crate::tls::{self, TlsMaterial};

/// The name of the admin IAM user created on first start.
pub const ADMIN_USER_NAME: &str = "admin";
/// The AWS CLI profile name written to the data dir.
pub const CLI_PROFILE: &str = "corral";
/// File names in the data dir.
pub const AWS_CONFIG_FILE: &str = "aws-config";
/// See [`AWS_CONFIG_FILE`].
pub const AWS_CREDENTIALS_FILE: &str = "aws-credentials";

const META_DEFAULT_ACCOUNT: &str = "default_account_id";
const META_ADMIN_KEY: &str = "admin_access_key_id";
const META_ADMIN_POLICY: &str = "admin_policy_attached";
/// The AWS managed policy that grants everything.
const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// What a started control plane is made of.
pub struct Prepared {
    /// The open store.
    pub store: Arc<dyn Store>,
    /// The deployment's (first) account.
    pub account_id: String,
    /// TLS material in effect.
    pub tls: TlsMaterial,
    /// Whether this start created the account.
    pub first_start: bool,
    /// The data dir's lock, held while the server runs.
    pub lock: crate::lock::DataDirLock,
}

/// Prepares the data dir, the store, the account and TLS material.
pub async fn prepare(config: &ServerConfig) -> anyhow::Result<Prepared> {
    ensure_private_dir(&config.data_dir)?;
    // Before anything in the data dir is opened or written: one server per data dir.
    let lock = crate::lock::DataDirLock::acquire(&config.data_dir)?;
    let key = corral_store::load_or_create_key_file(&config.effective_secret_key_file())
        .context("loading the secret key that encrypts credentials at rest")?;
    let url = config.effective_database_url();
    let sqlite_file = crate::files::sqlite_path(&url);
    if let Some(db) = &sqlite_file {
        crate::files::make_database_files_private(db)?;
    }
    let store =
        corral_store::open(&url, key).await.with_context(|| format!("opening the store at {}", redact_url(&url)))?;
    if let Some(db) = &sqlite_file {
        // Opening created the -wal and -shm files; make sure of their mode too.
        crate::files::make_database_files_private(db)?;
    }

    let (account_id, first_start) = match store.get_meta(META_DEFAULT_ACCOUNT).await? {
        Some(existing) => {
            if let Some(wanted) = &config.account_id {
                if wanted != &existing {
                    bail!(
                        "this Corral deployment already holds account {existing}; --account-id {wanted} disagrees. \
                         Drop --account-id, or start with another data dir or database."
                    );
                }
            }
            if config.admin_key.is_some() {
                tracing::warn!(
                    "CORRAL_ADMIN_ACCESS_KEY_ID/CORRAL_ADMIN_SECRET_ACCESS_KEY only apply on first start; ignored"
                );
            }
            (existing, false)
        }
        None => (create_account(store.as_ref(), config).await?, true),
    };

    // The admin has full access through AWS's AdministratorAccess policy. Recorded in the
    // store once done, so a crash right after the account was created is repaired at the next
    // start, and an operator's later change to the admin's policies is never undone.
    if store.get_meta(META_ADMIN_POLICY).await?.is_none() {
        store
            .attach_policy(&account_id, IamEntity::User(ADMIN_USER_NAME), ADMINISTRATOR_ACCESS, 10)
            .await
            .context("granting the admin user AdministratorAccess")?;
        store.set_meta(META_ADMIN_POLICY, ADMINISTRATOR_ACCESS).await?;
    }

    let creds_path = config.data_dir.join(AWS_CREDENTIALS_FILE);
    if first_start || !creds_path.exists() {
        write_credentials_file(store.as_ref(), &creds_path).await?;
    }

    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => TlsMaterial { ca_cert: None, cert_chain: cert.clone(), key: key.clone() },
        (None, None) => tls::ensure_generated_certificates(&config.data_dir, &config.tls_sans)?,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    Ok(Prepared { store, account_id, tls, first_start, lock })
}

async fn create_account(store: &dyn Store, config: &ServerConfig) -> anyhow::Result<String> {
    let account_id = match &config.account_id {
        Some(id) if ids::is_valid_account_id(id) => id.clone(),
        Some(id) => bail!("--account-id must be 12 digits, got {id:?}"),
        None => ids::new_account_id(),
    };
    let (access_key_id, secret_access_key) = match &config.admin_key {
        Some((id, secret)) => {
            if !ids::is_valid_long_term_access_key_id(id) {
                bail!("CORRAL_ADMIN_ACCESS_KEY_ID must look like an AWS access key ID: AKIA followed by 16 characters of A-Z and 2-7");
            }
            if !ids::is_valid_secret_access_key(secret) {
                bail!("CORRAL_ADMIN_SECRET_ACCESS_KEY must look like an AWS secret access key: 40 characters of A-Z, a-z, 0-9, + and /");
            }
            (id.clone(), secret.clone())
        }
        None => (ids::new_long_term_access_key_id(), ids::new_secret_access_key()),
    };
    let now = OffsetDateTime::now_utc();
    let account = Account { account_id: account_id.clone(), created_at: now };
    let admin = IamUser {
        account_id: account_id.clone(),
        user_name: ADMIN_USER_NAME.to_string(),
        user_id: ids::new_unique_id("AIDA"),
        path: "/".to_string(),
        arn: format!("arn:aws:iam::{account_id}:user/{ADMIN_USER_NAME}"),
        created_at: now,
    };
    let key = AccessKey {
        access_key_id: access_key_id.clone(),
        account_id: account_id.clone(),
        user_name: ADMIN_USER_NAME.to_string(),
        secret_access_key,
        status: AccessKeyStatus::Active,
        created_at: now,
    };
    store.bootstrap(&account, &admin, &key).await.context("creating the account and its admin user")?;
    store.set_meta(META_ADMIN_KEY, &access_key_id).await?;
    tracing::info!(account_id = %account_id, "created account and admin user");
    Ok(account_id)
}

async fn write_credentials_file(store: &dyn Store, path: &Path) -> anyhow::Result<()> {
    let Some(key_id) = store.get_meta(META_ADMIN_KEY).await? else {
        bail!("the admin access key is not recorded; cannot write {}", path.display());
    };
    let Some(key) = store.get_access_key(&key_id).await? else {
        bail!("the admin access key {key_id} no longer exists; cannot write {}", path.display());
    };
    let contents = format!(
        "[{CLI_PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    write_private_file(path, contents.as_bytes())
}

/// The URL clients use to reach a listener bound to `addr`.
pub fn endpoint_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_unspecified() {
        if ip.is_ipv4() {
            format!("https://127.0.0.1:{}", addr.port())
        } else {
            format!("https://[::1]:{}", addr.port())
        }
    } else {
        match ip {
            std::net::IpAddr::V4(v4) => format!("https://{v4}:{}", addr.port()),
            std::net::IpAddr::V6(v6) => format!("https://[{v6}]:{}", addr.port()),
        }
    }
}

/// Writes `aws-config` (profile `corral`: region, endpoint_url, ca_bundle), unless it already
/// says exactly that; a changed endpoint is logged, since every CLI user of the file is moved.
pub fn write_cli_config(config: &ServerConfig, tls: &TlsMaterial, endpoint: &str) -> anyhow::Result<PathBuf> {
    let path = config.data_dir.join(AWS_CONFIG_FILE);
    let mut contents = format!("[profile {CLI_PROFILE}]\nregion = {}\nendpoint_url = {endpoint}\n", config.region);
    if let Some(ca) = &tls.ca_cert {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.clone());
        contents.push_str(&format!("ca_bundle = {}\n", ca.display()));
    }
    let existing = std::fs::read_to_string(&path).ok();
    if existing.as_deref() == Some(contents.as_str()) {
        return Ok(path);
    }
    if let Some(old) = existing {
        let old_endpoint = old.lines().find_map(|l| l.strip_prefix("endpoint_url = ")).unwrap_or("none");
        if old_endpoint != endpoint {
            tracing::info!(from = old_endpoint, to = endpoint, file = %path.display(), "the endpoint changed; rewrote the AWS CLI config");
        } else {
            tracing::info!(file = %path.display(), "rewrote the AWS CLI config (region or CA changed)");
        }
    }
    write_public_file(&path, contents.as_bytes())?;
    Ok(path)
}

/// Hides a password in a database URL before it is printed.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_for_bound_addresses() {
        assert_eq!(endpoint_url("0.0.0.0:8443".parse().unwrap()), "https://127.0.0.1:8443");
        assert_eq!(endpoint_url("127.0.0.1:9".parse().unwrap()), "https://127.0.0.1:9");
        assert_eq!(endpoint_url("[::]:8443".parse().unwrap()), "https://[::1]:8443");
    }

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
