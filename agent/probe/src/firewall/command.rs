//! Running a host tool (`nft`, `iptables-save`, `systemctl`) with a time limit
//! and a bound on what it may print.
//!
//! Programs are found in the system directories first and then on `PATH`, and
//! are always started with separate arguments: no shell ever sees our input.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The system directories searched before `PATH`, so that a daemon started
/// with an odd environment still finds the distribution's tools.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// How much of a program's standard error is kept for messages.
const MAX_STDERR_BYTES: usize = 16 * 1024;

/// Errors of running a host tool.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{program} is not installed")]
    NotInstalled { program: String },
    #[error("{program}: cannot start: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{program}: no answer within {seconds} s, stopped")]
    TimedOut { program: String, seconds: u64 },
    #[error("{program}: printed more than {limit} bytes")]
    TooMuchOutput { program: String, limit: usize },
    #[error("{program}: {source}")]
    Io { program: String, source: io::Error },
}

/// What a finished program left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The start of its standard error, lossily decoded and trimmed.
    pub stderr: String,
}

impl Finished {
    /// A short description of a failure, for messages: the exit status and
    /// the first line of standard error.
    pub fn failure(&self) -> String {
        let first = self.stderr.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{}: {first}", self.status)
        }
    }
}

/// Finds `name` in the system directories, then on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    SYSTEM_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(path_dirs)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `name` (found with [`find_program`]) with `args`, kills it after
/// `timeout`, and refuses a standard output longer than `max_stdout` bytes.
/// A non-zero exit is not an error here: the caller reads `status`.
pub fn run(
    name: &str,
    args: &[&str],
    timeout: Duration,
    max_stdout: usize,
) -> Result<Finished, CommandError> {
    let program = find_program(name).ok_or_else(|| CommandError::NotInstalled {
        program: name.to_string(),
    })?;
    run_program(&program, name, args, timeout, max_stdout)
}

fn run_program(
    program: &Path,
    name: &str,
    args: &[&str],
    timeout: Duration,
    max_stdout: usize,
) -> Result<Finished, CommandError> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CommandError::Spawn {
            program: name.to_string(),
            source,
        })?;

    // Both pipes are drained on their own threads so that a chatty program
    // never blocks on a full pipe while we wait for it to exit.
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        thread::spawn(move || {
            let _ = out_tx.send(read_bounded(stdout, max_stdout));
        });
    }
    if let Some(stderr) = child.stderr.take() {
        thread::spawn(move || {
            let _ = err_tx.send(read_bounded(stderr, MAX_STDERR_BYTES));
        });
    }

    let deadline = Instant::now() + timeout;
    let timed_out = || CommandError::TimedOut {
        program: name.to_string(),
        seconds: timeout.as_secs(),
    };
    // A program closes its standard output when it exits, so the reader's
    // answer is waited for first: it arrives the moment the output ends,
    // where polling the exit status with growing pauses would oversleep.
    // A grandchild could keep the pipe open after the program exits; the
    // reader is waited for only until the deadline.
    let stdout_read = match out_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        Ok(read) => read,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
    };
    // The exit follows the end of the output at once, unless the program
    // closed its output early; short pauses then, growing to 5 ms.
    let mut pause = Duration::from_micros(50);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CommandError::Io {
                    program: name.to_string(),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    };

    let (stdout, overflow) = match stdout_read {
        Ok(read) => read,
        Err(source) => {
            return Err(CommandError::Io {
                program: name.to_string(),
                source,
            });
        }
    };
    if overflow {
        return Err(CommandError::TooMuchOutput {
            program: name.to_string(),
            limit: max_stdout,
        });
    }
    let stderr = match err_rx.recv_timeout(Duration::from_millis(100)) {
        Ok(Ok((bytes, _))) => String::from_utf8_lossy(&bytes).trim().to_string(),
        _ => String::new(),
    };
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

/// Reads everything, keeping at most `limit` bytes; the flag says whether
/// more was printed (and thrown away).
fn read_bounded(mut from: impl Read, limit: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut overflow = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let room = limit.saturating_sub(kept.len());
        if n > room {
            overflow = true;
        }
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    Ok((kept, overflow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_status_are_returned() {
        let done = run(
            "sh",
            &["-c", "echo out; echo err >&2; exit 3"],
            Duration::from_secs(5),
            1024,
        )
        .expect("sh runs");
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(done.stderr, "err");
        assert_eq!(done.status.code(), Some(3));
        assert!(done.failure().contains("err"));
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_deadline() {
        let started = Instant::now();
        let err = run("sleep", &["30"], Duration::from_millis(300), 1024).unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn too_much_output_is_refused() {
        let err = run(
            "sh",
            &["-c", "yes | head -c 100000"],
            Duration::from_secs(5),
            1000,
        )
        .unwrap_err();
        assert!(
            matches!(err, CommandError::TooMuchOutput { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_missing_program_is_not_installed() {
        let err = run("hardend-no-such-tool", &[], Duration::from_secs(1), 10).unwrap_err();
        assert!(matches!(err, CommandError::NotInstalled { .. }), "{err}");
    }
}
