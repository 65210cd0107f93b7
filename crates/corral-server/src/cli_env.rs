//! `corral env`: the environment that points the AWS CLI, boto3 and the SDKs at a Corral data
//! dir, as shell commands. `AWS_CA_BUNDLE` is set too: many machines export one (corporate
//! proxies), and it overrides a profile's `ca_bundle`, so the profile alone is not enough.

use std::path::{Path, PathBuf};

use crate::bootstrap::{AWS_CONFIG_FILE, AWS_CREDENTIALS_FILE, CLI_PROFILE};
use crate::tls::CA_CERT_FILE;

/// A shell to print the environment for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// sh, bash, zsh: `export NAME='value'`.
    Posix,
    /// fish: `set -gx NAME 'value'`.
    Fish,
    /// PowerShell: `$env:NAME = 'value'`.
    PowerShell,
}

impl Shell {
    /// Parses a `--shell` value.
    pub fn parse(name: &str) -> Option<Shell> {
        match name {
            "sh" | "bash" | "zsh" | "posix" => Some(Shell::Posix),
            "fish" => Some(Shell::Fish),
            "powershell" | "pwsh" => Some(Shell::PowerShell),
            _ => None,
        }
    }
}

/// The variables for `data_dir` (made absolute): a `None` value means "unset it" (a server on
/// an operator's certificate has no `ca.pem`, and a stale `AWS_CA_BUNDLE` would break TLS).
pub fn variables(data_dir: &Path) -> Vec<(&'static str, Option<String>)> {
    let dir = absolute(data_dir);
    let file = |name: &str| dir.join(name).display().to_string();
    let ca = dir.join(CA_CERT_FILE);
    vec![
        ("AWS_CONFIG_FILE", Some(file(AWS_CONFIG_FILE))),
        ("AWS_SHARED_CREDENTIALS_FILE", Some(file(AWS_CREDENTIALS_FILE))),
        ("AWS_PROFILE", Some(CLI_PROFILE.to_string())),
        ("AWS_CA_BUNDLE", ca.exists().then(|| ca.display().to_string())),
    ]
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    })
}

/// The variables as commands for `shell`, one per line.
pub fn render(vars: &[(&'static str, Option<String>)], shell: Shell) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        let line = match (shell, value) {
            (Shell::Posix, Some(v)) => format!("export {name}='{}'", v.replace('\'', r"'\''")),
            (Shell::Posix, None) => format!("unset {name}"),
            (Shell::Fish, Some(v)) => format!("set -gx {name} '{}'", v.replace('\\', r"\\").replace('\'', r"\'")),
            (Shell::Fish, None) => format!("set -e {name}"),
            (Shell::PowerShell, Some(v)) => format!("$env:{name} = '{}'", v.replace('\'', "''")),
            (Shell::PowerShell, None) => format!("Remove-Item Env:{name} -ErrorAction SilentlyContinue"),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_for_each_shell() {
        let vars = vec![("AWS_CONFIG_FILE", Some("/d/it's here/aws-config".to_string())), ("AWS_CA_BUNDLE", None)];
        assert_eq!(
            render(&vars, Shell::Posix),
            "export AWS_CONFIG_FILE='/d/it'\\''s here/aws-config'\nunset AWS_CA_BUNDLE\n"
        );
        assert_eq!(
            render(&vars, Shell::Fish),
            "set -gx AWS_CONFIG_FILE '/d/it\\'s here/aws-config'\nset -e AWS_CA_BUNDLE\n"
        );
        assert_eq!(
            render(&vars, Shell::PowerShell),
            "$env:AWS_CONFIG_FILE = '/d/it''s here/aws-config'\nRemove-Item Env:AWS_CA_BUNDLE -ErrorAction SilentlyContinue\n"
        );
    }

    #[test]
    fn paths_are_absolute_and_the_ca_is_set_only_when_there() {
        let dir = tempfile::tempdir().expect("dir");
        let vars = variables(dir.path());
        assert!(vars.iter().all(|(_, v)| v.as_deref().is_none_or(|v| !v.contains("/./"))));
        assert_eq!(vars[3], ("AWS_CA_BUNDLE", None));
        std::fs::write(dir.path().join(CA_CERT_FILE), "pem").expect("write");
        assert!(variables(dir.path())[3].1.as_deref().is_some_and(|v| v.starts_with('/') && v.ends_with("ca.pem")));
    }
}
