//! `hardend-dist OUTDIR`: writes the man pages and shell completions of
//! `hardend`, `hardend-collector` and `hardenctl` for the packages, generated
//! from the clap definitions the binaries themselves parse with, so a page
//! can never disagree with the program it describes.
//!
//! Layout (what `packaging/` and `scripts/package` expect):
//! - `OUTDIR/man/NAME.1`, plus `NAME-SUBCOMMAND.1` for every subcommand;
//! - `OUTDIR/completions/bash/NAME`, `OUTDIR/completions/zsh/_NAME`,
//!   `OUTDIR/completions/fish/NAME.fish`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap_complete::Shell;

/// The three programs the packages ship.
fn commands() -> Vec<clap::Command> {
    vec![
        hardend::cli::command(),
        hardend_collector::cli::collector_command(),
        hardend_collector::cli::ctl_command(),
    ]
}

/// Where a shell looks for a program's completion, relative to
/// `OUTDIR/completions/SHELL/`.
fn completion_file(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_string(),
    }
}

/// Writes every page and completion below `out`; returns the files written.
fn generate(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = out.join("man");
    fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    for cmd in commands() {
        let before: Vec<PathBuf> = list(&man)?;
        clap_mangen::generate_to(cmd, &man)
            .with_context(|| format!("writing man pages to {}", man.display()))?;
        written.extend(list(&man)?.into_iter().filter(|p| !before.contains(p)));
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out.join("completions").join(shell.to_string());
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for mut cmd in commands() {
            let name = cmd.get_name().to_string();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cmd, &name, &mut text);
            let path = dir.join(completion_file(shell, &name));
            fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        files.push(entry?.path());
    }
    Ok(files)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        bail!(
            "usage: hardend-dist OUTDIR\n\
             Writes OUTDIR/man/*.1 and OUTDIR/completions/{{bash,zsh,fish}}/* for \
             hardend, hardend-collector and hardenctl."
        );
    };
    if out == "--help" || out == "-h" {
        println!("usage: hardend-dist OUTDIR (writes man pages and shell completions)");
        return Ok(());
    }
    let written = generate(Path::new(&out))?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn writes_a_page_per_command_and_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path()).unwrap();
        let man = dir.path().join("man");
        for page in [
            "hardend.1",
            "hardend-check.1",
            "hardend-validate.1",
            "hardend-run.1",
            "hardend-status.1",
            "hardend-report.1",
            "hardend-watch.1",
            "hardend-collector.1",
            "hardend-collector-pki.1",
            "hardend-collector-pki-issue.1",
            "hardenctl.1",
            "hardenctl-findings.1",
        ] {
            assert!(written.contains(&man.join(page)), "{page} not written");
        }
        let check = read(&man.join("hardend-check.1"));
        assert!(check.contains(".TH hardend-check 1"), "{check}");
        assert!(check.contains(&format!("check {}", env!("CARGO_PKG_VERSION"))));
        assert!(
            check.contains("fail\\-on"),
            "--fail-on missing from hardend-check.1"
        );
        assert!(
            check.contains("Exit codes"),
            "the exit codes section is missing"
        );
        let ctl = read(&man.join("hardenctl.1"));
        assert!(
            ctl.contains("HARDENCTL_COLLECTOR"),
            "the environment is not documented"
        );
        // No pages for clap's own `help` pseudo-subcommand.
        assert!(
            !written
                .iter()
                .any(|p| p.to_string_lossy().contains("-help"))
        );
    }

    #[test]
    fn writes_completions_for_each_shell_in_its_conventional_name() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path()).unwrap();
        let c = dir.path().join("completions");
        let bash = read(&c.join("bash/hardend"));
        assert!(bash.contains("complete -F _hardend"), "{bash}");
        assert!(bash.contains("--fail-on"));
        let zsh = read(&c.join("zsh/_hardenctl"));
        assert!(zsh.starts_with("#compdef hardenctl"), "{zsh}");
        assert!(zsh.contains("--overdue"));
        let fish = read(&c.join("fish/hardend-collector.fish"));
        assert!(fish.contains("complete -c hardend-collector"), "{fish}");
        assert!(fish.contains("pki"));
    }
}
