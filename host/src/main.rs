//! The `easel` command: `serve` runs the server, `openapi` prints the API spec.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use easel::config::{Config, LogFormat, Overrides};

/// Easel: a self-hosted AI image generation server.
#[derive(Parser)]
#[command(name = "easel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (defaults: 127.0.0.1:8080, data in ./easel-data).
    Serve {
        /// Address to listen on [env: EASEL_LISTEN].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Directory for the database, images and plugins [env: EASEL_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file (see docker/easel.example.toml).
        #[arg(long, env = "EASEL_CONFIG")]
        config: Option<PathBuf>,
        /// Log format [env: EASEL_LOG_FORMAT].
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Print the OpenAPI 3 spec (JSON) to stdout.
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", easel::api::spec_json());
            ExitCode::SUCCESS
        }
        Command::Serve { listen, data_dir, config, log_format } => {
            let overrides = Overrides { listen, data_dir, log_format };
            let config = match Config::load(config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("easel: {e}");
                    return ExitCode::from(2);
                }
            };
            easel::telemetry::init(config.log_format);
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("easel: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(easel::server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = ?e, "easel stopped on an error");
                    eprintln!("easel: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
