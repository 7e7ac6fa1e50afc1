//! The `tend` binary: argument parsing and exit codes; everything else is in the library.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tend::backup_policy::BackupSettings;
use tend::context::Clock;
use tend::leader::LeaseConfig;
use tend::run::{RunConfig, default_identity, run};
use tend_backup::PostgresTools;

#[derive(Parser)]
#[command(
    name = "tend",
    version,
    about = "GitOps controller for the day-2 operations of a web service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster in KUBECONFIG (or in-cluster config).
    Run {
        /// Address for /metrics, /healthz and /readyz.
        #[arg(long, env = "TEND_METRICS_ADDR", default_value = "0.0.0.0:8080")]
        metrics_addr: SocketAddr,
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "TEND_WATCH_NAMESPACE")]
        watch_namespace: Option<String>,
        /// Namespace of the leader election Lease.
        #[arg(long, env = "POD_NAMESPACE", default_value = "tend-system")]
        lease_namespace: String,
        /// Name of the leader election Lease.
        #[arg(long, default_value = "tend-controller")]
        lease_name: String,
        /// This replica's identity in the Lease (default: host name and pid).
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Act without leader election (only ever run one replica like this).
        #[arg(long)]
        no_leader_election: bool,
        /// Log format.
        #[arg(long, env = "TEND_LOG_FORMAT", default_value = "json", value_parser = ["json", "text"])]
        log_format: String,
        /// Directories holding PostgreSQL client tools as `<dir>/<major>/bin/pg_dump` (Debian's
        /// layout); the dump uses the major version of the server. Repeat or separate with `:`.
        #[arg(
            long,
            env = "TEND_POSTGRES_TOOLS",
            value_delimiter = ':',
            default_value = "/usr/lib/postgresql"
        )]
        postgres_tools: Vec<PathBuf>,
    },
    /// Print the CustomResourceDefinitions (YAML), or write one file per CRD into a directory.
    Crds {
        /// Write `<plural>.tend.dev.yaml` files into this directory instead of printing.
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube=warn,tower=warn,hyper=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("tend {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Crds { write: None } => {
            print!("{}", tend_crds::all_crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Crds { write: Some(dir) } => {
            for crd in tend_crds::crds() {
                let path = dir.join(tend_crds::crd_file_name(&crd));
                if let Err(error) = std::fs::write(&path, tend_crds::crd_yaml(&crd)) {
                    eprintln!("tend: cannot write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            metrics_addr,
            watch_namespace,
            lease_namespace,
            lease_name,
            identity,
            no_leader_election,
            log_format,
            postgres_tools,
        } => {
            init_logging(&log_format);
            let identity = identity.unwrap_or_else(default_identity);
            let lease = (!no_leader_election)
                .then(|| LeaseConfig::new(&lease_namespace, &lease_name, &identity));
            let config = RunConfig {
                metrics_addr,
                watch_namespace,
                lease,
                clock: Clock::system(),
                backup: BackupSettings {
                    postgres_tools: PostgresTools {
                        search_dirs: postgres_tools,
                    },
                },
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("tend: cannot start the async runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "tend stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
