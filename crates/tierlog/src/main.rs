//! # tierlog — the broker binary
//!
//! Wiring: reads configuration and the environment (the only crate that does), builds the
//! runtime, serves the broker (binary protocol and web port) and hosts the command-line tools.

mod admin_cli;
mod client_conf;
mod config;
mod metrics;
mod offload_cli;
mod orphan_gc;
mod perf;
mod server;
mod tokens;
mod web;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The data path moves hundreds of MB/s through buffers of 0.1–2 MiB that live for a flush
/// interval or so (frames as they arrive, held until their WAL commit). glibc serves buffers
/// of that size with mmap and gives them back on free, so every received byte landed on a
/// fresh page the kernel had to zero (a third of the broker's CPU at full load, see
/// docs/benchmarks.md); mimalloc keeps freed memory for the next buffers.
///
/// Without transparent huge pages (mimalloc's `no_thp` feature, and [`no_huge_pages`] for
/// hosts where THP is `always`): mimalloc returns memory it has not reused for a while, and
/// every re-fault of such memory as a huge page zeroes 2 MiB. That was 28 % of the broker's CPU
/// in the cluster bench's 100-topic run; without it the broker's CPU per GB fell from 1.4 to
/// 1.0 s and perf's from 1.0 to 0.5 s, and throughput rose by 35–45 %.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tierlog",
    version,
    about = "A Pulsar-compatible streaming log broker with tiered storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone broker: local hot tier, embedded metadata, admin/metrics HTTP port.
    Standalone {
        /// Configuration file in Pulsar's key=value format (default: conf/standalone.conf if it
        /// exists). Any key can be overridden by the environment variable TIERLOG_<key>.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Run one broker of a cluster: metadata in etcd (metadataStoreUrl), topics served by the
    /// broker owning their namespace bundle (mirrors `pulsar broker`).
    Broker {
        /// Configuration file in Pulsar's key=value format (default: conf/broker.conf if it
        /// exists). Any key can be overridden by the environment variable TIERLOG_<key>.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
    },
    /// Administer a broker over its REST API (mirrors pulsar-admin).
    Admin(admin_cli::AdminArgs),
    /// Tools for tiered storage.
    #[command(subcommand)]
    Offload(OffloadCommand),
    /// Load generator over the binary protocol (mirrors pulsar-perf).
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Keys and tokens for token authentication (mirrors `pulsar tokens`).
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// Print a shell completion script (e.g. `source <(tierlog completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum OffloadCommand {
    /// Print an offloaded ledger's metadata and every entry (size, SHA-256), without a broker.
    Dump(offload_cli::dump::DumpArgs),
    /// Read every offloaded object of a location (or of one topic) back and check it: index,
    /// block headers, records, contiguous entry ids, entry checksums, lengths. Exits 1 on any
    /// problem.
    Scrub(offload_cli::scrub::ScrubArgs),
    /// Rebuild the ledger lists of topics from the objects in the tier, into the broker's
    /// metadata store (after its disk and metadata were lost); run with the broker stopped.
    Recover(offload_cli::recover::RecoverArgs),
    /// Remove what the offload location holds that no ledger list references (older than the
    /// grace period, written by this cluster) and abort old incomplete multipart uploads.
    Gc(offload_cli::gc::GcArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr on a full disk) is dropped. With this on,
        // tracing-subscriber reports the failure with eprintln!, which panics when stderr
        // fails too: the task that logged (an append refused for want of space) died and its
        // producer waited forever.
        .log_internal_errors(false)
        .init();
}

/// Runs the broker process with the configuration file given, or `default` if it exists.
/// The configuration from `file`, else `default` if it exists, then the environment.
fn load_config(file: Option<PathBuf>, default: &str) -> anyhow::Result<policy::BrokerConfig> {
    let default = PathBuf::from(default);
    let file = file.or_else(|| default.exists().then_some(default));
    let (config, warnings) =
        config::load(file.as_deref(), std::env::vars()).context("configuration refused")?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// Threads for blocking work in the broker (see `serve`).
const BLOCKING_THREADS: usize = 16;

/// Raises the soft limit of open files to the hard one: every open ledger holds its file open,
/// and every connection a socket (a broker with 10 000 topics needs more than the usual 1024).
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(limit = ?limit.maximum, "raised the open files limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
        }
    }
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|n| n < 10_000) {
        tracing::warn!(
            limit = ?limit.current,
            "the open files limit is low: each open ledger and connection takes one"
        );
    }
}

fn serve(file: Option<PathBuf>, default: &str, mode: server::Mode) -> anyhow::Result<()> {
    let config = load_config(file, default)?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tierlog-worker")
        // Blocking work (metadata commits, hot-tier reads, cache files) on a bounded pool: the
        // broker's thread count must not follow its topic count (tokio's default allows 512).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(server::run(config, mode))
}

/// Turns transparent huge pages off for this process (see [`ALLOCATOR`]). Memory faulted in
/// before this (the allocator's first arena, a few MiB) keeps what it got.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Only slower: the kernel (or a seccomp filter) refused the prctl.
        eprintln!("tierlog: could not turn transparent huge pages off: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    no_huge_pages();
    let cli = Cli::parse_from(admin_cli::expand_short_flags(std::env::args()));
    init_logging();
    match cli.command {
        Command::Standalone { config } => {
            serve(config, "conf/standalone.conf", server::Mode::Standalone)
        }
        Command::Broker { config } => {
            serve(config, "conf/broker.conf", server::Mode::ClusterBroker)
        }
        Command::Admin(args) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(admin_cli::run(args))
        }
        Command::Perf(cmd) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(perf::run(cmd))
        }
        Command::Tokens(cmd) => tokens::run(cmd),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into memory first: the generator panics on a closed pipe (`… | head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tierlog", &mut script);
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Offload(cmd) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            match cmd {
                OffloadCommand::Dump(args) => runtime.block_on(offload_cli::dump::run(args)),
                OffloadCommand::Gc(args) => {
                    let config = load_config(args.config.clone(), "conf/standalone.conf")?;
                    runtime.block_on(offload_cli::gc::run(args, config))
                }
                OffloadCommand::Recover(args) => {
                    let config = load_config(args.config.clone(), "conf/standalone.conf")?;
                    runtime.block_on(offload_cli::recover::run(args, config))
                }
                OffloadCommand::Scrub(args) => {
                    let config = match &args.config {
                        Some(file) => Some(load_config(Some(file.clone()), "")?),
                        None => None,
                    };
                    if runtime.block_on(offload_cli::scrub::run(args, config))? > 0 {
                        std::process::exit(1);
                    }
                    Ok(())
                }
            }
        }
    }
}
