//! `devcluster serve`: run the embedded Kubernetes API server until Ctrl-C.

use clap::{Parser, Subcommand};
use devcluster::{DevCluster, Options};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "devcluster",
    about = "An embedded Kubernetes API server for development and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API on 127.0.0.1 until interrupted.
    ///
    /// Tests and scripts can make it fail like a real API server through the same port:
    /// POST /devcluster/v1/faults {"response":"InternalError","verb":"update","stage":"AfterCommit"},
    /// DELETE /devcluster/v1/faults, PUT /devcluster/v1/watch-delay {"baseMillis":200},
    /// PUT /devcluster/v1/stale-reads {"lagMillis":2000}, POST /devcluster/v1/close-watches.
    Serve {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Keep state here across restarts (default: memory only).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write the kubeconfig here (default: <data-dir>/kubeconfig or a temp file).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Create this namespace at start (repeatable).
        #[arg(long = "create-namespace")]
        namespaces: Vec<String>,
        /// Apply the YAML files in this file or directory at start (repeatable).
        #[arg(long = "apply")]
        apply: Vec<PathBuf>,
        /// Watch history length; watches resuming from older resourceVersions get 410 Gone.
        #[arg(long, default_value_t = 20_000)]
        history: usize,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEVCLUSTER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devcluster: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Serve {
        port,
        data_dir,
        kubeconfig,
        namespaces,
        apply,
        history,
    } = cli.command;
    let cluster = DevCluster::start(Options {
        port,
        data_dir,
        kubeconfig,
        history_limit: history,
    })
    .await?;
    for ns in &namespaces {
        cluster.ensure_namespace(ns);
    }
    if !apply.is_empty() {
        // A bad file is reported, not fatal: the cluster keeps serving what did apply.
        let report = cluster.apply_paths(&apply);
        for line in &report.applied {
            println!("{line}");
        }
        for failure in &report.failed {
            eprintln!("devcluster: not applied: {failure}");
            println!("not applied: {failure}");
        }
    }
    println!(
        "devcluster serving {} (kubeconfig {})",
        cluster.url(),
        cluster.kubeconfig_path().display()
    );
    cluster.run_until_signal().await
}
