//! Finding and reading botocore's service models.
//!
//! The models come from a pinned botocore installed with pip into a venv under `target/`, so every
//! run of the generator reads the same data whatever Python packages the machine has globally.

use crate::json::Json;
use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The botocore release the generated code is built from. Changing it and re-running the generator
/// is how the models are updated.
pub const BOTOCORE_VERSION: &str = "1.44.8";

/// Where the generator's venv lives, relative to the workspace root.
const VENV_DIR: &str = "target/codegen-venv";

/// Makes sure the venv exists with the pinned botocore and returns botocore's package directory.
pub fn ensure_botocore(workspace: &Path) -> Result<PathBuf> {
    let venv = workspace.join(VENV_DIR);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        eprintln!("codegen: creating venv at {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("creating the codegen venv (is python3 with the venv module installed?)")?;
    }
    let installed = botocore_version(&python).unwrap_or_default();
    if installed != BOTOCORE_VERSION {
        eprintln!("codegen: installing botocore=={BOTOCORE_VERSION} into the venv");
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("botocore=={BOTOCORE_VERSION}"),
        ]))
        .context("pip install of botocore into the codegen venv")?;
        let now = botocore_version(&python).unwrap_or_default();
        if now != BOTOCORE_VERSION {
            bail!("the venv has botocore {now:?} after installing {BOTOCORE_VERSION}");
        }
    }
    let out = Command::new(&python)
        .args(["-c", "import os, botocore; print(os.path.dirname(botocore.__file__))"])
        .output()
        .context("asking the venv's python where botocore is")?;
    if !out.status.success() {
        bail!("locating botocore failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let dir = String::from_utf8(out.stdout).context("botocore path is not UTF-8")?;
    Ok(PathBuf::from(dir.trim()))
}

fn botocore_version(python: &Path) -> Option<String> {
    let out = Command::new(python).args(["-c", "import botocore; print(botocore.__version__)"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

/// Reads `data/<service>/<api_version>/service-2.json(.gz)` under botocore's directory.
pub fn load_model(botocore_dir: &Path, service: &str, api_version: &str) -> Result<Json> {
    let dir = botocore_dir.join("data").join(service).join(api_version);
    let gz = dir.join("service-2.json.gz");
    let plain = dir.join("service-2.json");
    let text = if gz.exists() {
        let file = std::fs::File::open(&gz).with_context(|| format!("opening {}", gz.display()))?;
        let mut text = String::new();
        GzDecoder::new(file).read_to_string(&mut text).with_context(|| format!("decompressing {}", gz.display()))?;
        text
    } else {
        std::fs::read_to_string(&plain).with_context(|| format!("reading {} (nor was there a .gz)", plain.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("parsing the model in {}", dir.display()))
}

/// Reads `xtask/models/<service>.model.json`, if there is one: a whole model (botocore's format)
/// for a service botocore does not describe at all (the agent's ec2messages).
pub fn load_local_model(workspace: &Path, service: &str) -> Result<Option<Json>> {
    let path = workspace.join("xtask").join("models").join(format!("{service}.model.json"));
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?))
}

/// Reads `xtask/models/<service>.supplement.json`, if there is one: operations and shapes that
/// botocore's public model lacks (the SSM agent's private calls), written in botocore's format.
pub fn load_supplement(workspace: &Path, service: &str) -> Result<Option<Json>> {
    let path = workspace.join("xtask").join("models").join(format!("{service}.supplement.json"));
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(json))
}

/// Adds a supplement's `operations` and `shapes` to a model. A name the model already has is an
/// error: a supplement adds, it never overrides what botocore says.
pub fn merge_supplement(model: Json, supplement: &Json) -> Result<Json> {
    let Json::Object(mut top) = model else { anyhow::bail!("the model is not a JSON object") };
    for section in ["operations", "shapes"] {
        let extra = supplement.members_of(section);
        let Some((_, Json::Object(existing))) = top.iter_mut().find(|(k, _)| k == section) else {
            anyhow::bail!("the model has no {section} object");
        };
        for (name, value) in extra {
            if existing.iter().any(|(k, _)| k == name) {
                anyhow::bail!("the supplement redefines {section}.{name}, which botocore's model already has");
            }
            existing.push((name.clone(), value.clone()));
        }
    }
    Ok(Json::Object(top))
}
