//! The command lines of `hardend-collector` and `hardenctl`: subcommands,
//! flags and help texts, in the library so the man pages and shell
//! completions are generated from what the binaries parse with.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hardend_proto as pb;

use crate::config::DEFAULT_CONFIG_PATH;
use crate::console;
use crate::pki::{self, CertKind};

#[derive(Parser)]
#[command(
    name = "hardend-collector",
    version,
    propagate_version = true,
    about = "The hardend fleet collector"
)]
pub struct CollectorCli {
    /// The configuration file (used when no subcommand is given).
    #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<CollectorCommand>,
}

#[derive(Subcommand)]
pub enum CollectorCommand {
    /// Runs the collector (the default).
    Run {
        /// The configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Creates a CA and issues certificates for small deployments and tests.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
pub enum PkiCommand {
    /// Writes DIR/ca.pem and DIR/ca.key (mode 0600), a CA valid ten years;
    /// refuses to overwrite an existing CA.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Writes DIR/NAME.pem and DIR/NAME.key (mode 0600) signed by DIR's CA.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// collector: NAME is its DNS name or IP; agent: NAME is the host
        /// identity; console: NAME is the operator.
        #[arg(long, value_enum)]
        kind: CertKind,
        #[arg(long)]
        name: String,
        /// How long the certificate is valid, in days.
        #[arg(long, default_value_t = pki::LEAF_DAYS)]
        days: u32,
    },
}

#[derive(Debug, Parser)]
#[command(
    name = "hardenctl",
    version,
    propagate_version = true,
    about = "The hardend console: fleet summary, hosts, findings and live drift",
    after_help = "Against the fleet: --collector https://HOST:PORT --ca F --cert F --key F \
                  (or HARDENCTL_COLLECTOR, HARDENCTL_CA, HARDENCTL_CERT, HARDENCTL_KEY).\n\
                  Against one agent: --agent unix:/run/hardend/hardend.sock"
)]
pub struct CtlCli {
    /// The collector's URL, https://HOST:PORT.
    #[arg(long, env = "HARDENCTL_COLLECTOR", global = true, value_name = "URL")]
    pub collector: Option<String>,
    /// The CA certificate that signed the collector's certificate (PEM).
    #[arg(long, env = "HARDENCTL_CA", global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// This console's certificate (PEM, kind console).
    #[arg(long, env = "HARDENCTL_CERT", global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// This console's private key (PEM).
    #[arg(long, env = "HARDENCTL_KEY", global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The name to check the collector's certificate against (default: the
    /// host of the URL).
    #[arg(long, global = true, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Ask one agent instead of the collector: unix:PATH of its socket.
    #[arg(long, global = true, value_name = "unix:PATH")]
    pub agent: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The fleet at a glance: hosts, compliance per policy and severity,
    /// open and overdue findings, mean time to fix against the deadlines.
    Summary,
    /// Every host, with its results and when it was last seen.
    Hosts,
    /// One host: its policies and the rules it fails.
    Host {
        /// The host's identity (its certificate name).
        name: String,
    },
    /// Open findings, most urgent first.
    Findings {
        /// Only this severity (critical, high, medium, low).
        #[arg(long, value_parser = parse_severity)]
        severity: Option<pb::Severity>,
        /// Only this policy.
        #[arg(long)]
        policy: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only findings past their severity's deadline.
        #[arg(long)]
        overdue: bool,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
    },
    /// Live drift until Ctrl-C.
    Watch {
        /// Only events at or above this severity.
        #[arg(long, value_parser = parse_severity)]
        severity: Option<pb::Severity>,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
    },
}

pub fn parse_severity(word: &str) -> Result<pb::Severity, String> {
    console::parse_severity(word)
        .ok_or_else(|| format!("unknown severity {word:?} (critical, high, medium or low)"))
}

/// `hardend-collector` as clap sees it.
pub fn collector_command() -> clap::Command {
    <CollectorCli as clap::CommandFactory>::command()
}

/// `hardenctl` as clap sees it.
pub fn ctl_command() -> clap::Command {
    <CtlCli as clap::CommandFactory>::command()
}
