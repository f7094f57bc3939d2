//! The suite-wide secret audit: tests note the secrets they use (tokens, passwords, keys,
//! object-store credentials) and keep the logs and error output their processes write; after
//! the whole suite, `audit-secrets` (run by `./scripts/test`) greps every kept log, and
//! nextest's record of every test's own output, for every noted secret.
//!
//! Both go under `TIERLOG_TEST_AUDIT_DIR` (set by `./scripts/test`): `secrets/<pid>` holds one
//! secret per line, `logs/` one file per kept log. Without that variable (one test run by hand)
//! nothing is kept and nothing is checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Secrets shorter than this would match ordinary text; tests use longer ones.
pub const MIN_SECRET_LEN: usize = 8;

/// Object-store credentials for tests against moto and the proxies, distinctive enough that the
/// audit can look for them (moto accepts any).
pub const S3_ACCESS_KEY: &str = "tierlog-test-access-key";
pub const S3_SECRET_KEY: &str = "tierlog-test-s3-secret-7f3a9c";

/// [`S3_SECRET_KEY`], noted for the audit.
pub fn s3_secret_key() -> &'static str {
    secret(S3_SECRET_KEY);
    S3_SECRET_KEY
}

fn dir() -> Option<PathBuf> {
    std::env::var_os("TIERLOG_TEST_AUDIT_DIR").map(PathBuf::from)
}

/// Notes a secret a test uses, so the audit looks for it in every log of the suite.
///
/// Panics on a secret shorter than [`MIN_SECRET_LEN`] or holding a line break: the audit could
/// not look for it without false alarms.
pub fn secret(value: impl AsRef<str>) {
    let value = value.as_ref();
    assert!(
        value.len() >= MIN_SECRET_LEN && !value.contains(['\n', '\r']),
        "a secret for the audit must be one line of at least {MIN_SECRET_LEN} characters"
    );
    let Some(dir) = dir() else { return };
    let dir = dir.join("secrets");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(std::process::id().to_string()))
    {
        let _ = writeln!(f, "{value}");
    }
}

/// Keeps `bytes` (a process's log or error output) for the audit, named after `what`.
pub fn keep(what: &str, bytes: &[u8]) {
    static KEPT: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = dir() else { return };
    let dir = dir.join("logs");
    let _ = std::fs::create_dir_all(&dir);
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let n = KEPT.fetch_add(1, Ordering::Relaxed);
    let _ = std::fs::write(
        dir.join(format!("{}-{n}-{name}.log", std::process::id())),
        bytes,
    );
}

/// Runs `cmd`, keeps its standard error for the audit, and returns its output. (Standard output
/// is the command's answer — a token `tierlog tokens create` prints is meant to be there.)
pub fn output(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().expect("run the command");
    let name = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    keep(&name, &out.stderr);
    out
}

/// A secret found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The secret's first characters and length (the report must not leak it either).
    pub secret: String,
    pub file: PathBuf,
}

/// Every noted secret (under `audit_dir/secrets`) found in a kept log (under `audit_dir/logs`)
/// or in one of `more` files.
pub fn scan(audit_dir: &Path, more: &[PathBuf]) -> std::io::Result<Vec<Finding>> {
    let mut secrets = std::collections::BTreeSet::new();
    for f in read_dir(&audit_dir.join("secrets"))? {
        for line in std::fs::read_to_string(&f)?.lines() {
            if line.len() >= MIN_SECRET_LEN {
                secrets.insert(line.to_string());
            }
        }
    }
    let mut files = read_dir(&audit_dir.join("logs"))?;
    files.extend(more.iter().cloned());
    let mut findings = Vec::new();
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file)?).to_string();
        for s in &secrets {
            if text.contains(s.as_str()) {
                findings.push(Finding {
                    secret: format!("{}… ({} characters)", &s[..4.min(s.len())], s.len()),
                    file: file.clone(),
                });
            }
        }
    }
    Ok(findings)
}

fn read_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_secret_in_a_kept_log_is_found_and_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(
            dir.path().join("secrets/1"),
            "hunter2-password\nshort\nsk-live-0123456789\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("logs/clean.log"), "INFO started\n").unwrap();
        std::fs::write(
            dir.path().join("logs/leaky.log"),
            "WARN login failed for bob with hunter2-password\n",
        )
        .unwrap();
        let junit = dir.path().join("junit.xml");
        std::fs::write(&junit, "<system-out>token sk-live-0123456789</system-out>").unwrap();
        let mut found = scan(dir.path(), std::slice::from_ref(&junit)).unwrap();
        found.sort_by(|a, b| a.file.cmp(&b.file));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].file.ends_with("junit.xml"));
        assert!(found[1].file.ends_with("leaky.log"));
        assert_eq!(found[1].secret, "hunt… (16 characters)");
        // "short" is below the minimum and never looked for ("started" would not match anyway).
        assert!(found.iter().all(|f| !f.secret.starts_with("shor")));
    }
}
