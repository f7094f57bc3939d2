//! `audit-secrets [--require-secrets] AUDIT_DIR [FILE…]`: after the test suite, every secret
//! the tests noted, looked for in every log they kept and in FILE… (nextest's JUnit record of
//! every test's output). Exits 1, naming the files (never the secrets), if one is found; with
//! `--require-secrets` (a whole-suite run), also if no test noted any (the audit would be blind).

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    let require = args.next_if(|a| a == "--require-secrets").is_some();
    let Some(dir) = args.next() else {
        eprintln!("usage: audit-secrets AUDIT_DIR [FILE…]");
        std::process::exit(2);
    };
    let more: Vec<std::path::PathBuf> = args.map(Into::into).collect();
    let dir = std::path::PathBuf::from(dir);
    match testkit::audit::scan(&dir, &more) {
        Ok(found) if found.is_empty() => {
            let count = |sub: &str| std::fs::read_dir(dir.join(sub)).map_or(0, |d| d.count());
            if require && count("secrets") == 0 {
                eprintln!(
                    "secret audit: no test noted a secret under {} (is TIERLOG_TEST_AUDIT_DIR reaching the tests?)",
                    dir.display()
                );
                std::process::exit(1);
            }
            println!(
                "secret audit: no noted secret in {} kept logs or {} more files ({} secret files)",
                count("logs"),
                more.len(),
                count("secrets")
            );
        }
        Ok(found) => {
            for f in &found {
                eprintln!("secret audit: {} found in {}", f.secret, f.file.display());
            }
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("secret audit: cannot read {}: {e}", dir.display());
            std::process::exit(2);
        }
    }
}
