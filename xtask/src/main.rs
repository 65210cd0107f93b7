//! Workspace automation. `cargo run -p xtask -- codegen` regenerates `crates/corral-api/src/generated`
//! from botocore's service models; `codegen --check` only reports whether that would change anything.

mod allowlist;
mod botocore;
mod emit;
mod json;
mod model;
mod names;
mod pattern;

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USAGE: &str = "usage: cargo run -p xtask -- codegen [--check]";

/// Where the generated modules go, relative to the workspace root.
const OUT_DIR: &str = "crates/corral-api/src/generated";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("codegen") => {
            let check = match args.get(1).map(String::as_str) {
                None => false,
                Some("--check") => true,
                Some(other) => bail!("unknown codegen flag {other:?}\n{USAGE}"),
            };
            codegen(check)
        }
        _ => bail!("{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn codegen(check: bool) -> Result<()> {
    let root = workspace_root();
    let botocore_dir = botocore::ensure_botocore(&root)?;
    let version = botocore::BOTOCORE_VERSION;
    let mut files: Vec<(String, String)> = Vec::new();
    let mut patterns = BTreeSet::new();
    let mut services = Vec::new();
    let mut specs: Vec<&allowlist::ServiceSpec> = allowlist::SERVICES.iter().collect();
    specs.sort_by_key(|s| s.name);
    for spec in specs {
        let mut raw = match botocore::load_local_model(&root, spec.name)? {
            Some(local) => local,
            None => botocore::load_model(&botocore_dir, spec.name, spec.api_version)?,
        };
        if let Some(supplement) = botocore::load_supplement(&root, spec.name)? {
            raw = botocore::merge_supplement(raw, &supplement)
                .with_context(|| format!("merging xtask/models/{}.supplement.json", spec.name))?;
        }
        let model = model::Model::parse(&raw).with_context(|| format!("model of {}", spec.name))?;
        let generated = emit::service(spec, &model, version)?;
        patterns.extend(generated.patterns);
        files.push((format!("{}.rs", spec.name), generated.source));
        services.push((spec, model.metadata.api_version.clone()));
    }
    files.push(("mod.rs".to_owned(), emit::module_index(&services, &patterns, version)));

    let out_dir = root.join(OUT_DIR);
    let mut stale = Vec::new();
    for (name, source) in &files {
        let formatted = rustfmt(&root, source).with_context(|| format!("formatting {name}"))?;
        let path = out_dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == formatted {
            continue;
        }
        stale.push(name.clone());
        if !check {
            std::fs::create_dir_all(&out_dir)?;
            std::fs::write(&path, formatted).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if check && !stale.is_empty() {
        bail!("generated code is out of date: {}", stale.join(", "));
    }
    if stale.is_empty() {
        eprintln!("codegen: {OUT_DIR} is up to date (botocore {version})");
    } else {
        eprintln!("codegen: wrote {} in {OUT_DIR} (botocore {version})", stale.join(", "));
    }
    Ok(())
}

/// Formats Rust source with the toolchain's rustfmt, so the checked-in files stay `cargo fmt` clean.
fn rustfmt(root: &Path, source: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (is it installed? `rustup component add rustfmt`)")?;
    let mut stdin = child.stdin.take().context("rustfmt stdin")?;
    let input = source.to_owned();
    // Write from a thread so a large file cannot dead-lock against rustfmt's full stdout pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().context("waiting for rustfmt")?;
    writer.join().map_err(|_| anyhow::anyhow!("rustfmt writer thread panicked"))?.context("writing to rustfmt")?;
    if !out.status.success() {
        bail!("rustfmt failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout).context("rustfmt output is not UTF-8")
}
