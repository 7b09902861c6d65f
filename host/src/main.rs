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
    /// Tools for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new stand-alone plugin crate that builds as is.
    New {
        /// provider, style-pack, cropper or filter.
        kind: String,
        /// Plugin id and folder name, e.g. my-provider.
        name: String,
        /// Where to create the folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK dependency line to write (default: this build's SDK path, else the published crate).
        #[arg(long)]
        sdk: Option<String>,
    },
    /// Check a plugin folder: manifest, ABI version, exports and what it offers.
    Check {
        /// The folder with plugin.toml (and the .wasm, or a target/ after building).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            print!("{}", easel::api::spec_json());
            ExitCode::SUCCESS
        }
        Command::Plugin(PluginCommand::New { kind, name, dir, sdk }) => {
            let kind = match kind.as_str() {
                "provider" => easel::plugins::manifest::PluginKind::Provider,
                "style-pack" => easel::plugins::manifest::PluginKind::StylePack,
                "cropper" => easel::plugins::manifest::PluginKind::Cropper,
                "filter" => easel::plugins::manifest::PluginKind::Filter,
                other => {
                    eprintln!("easel: unknown plugin kind {other:?}; use provider, style-pack, cropper or filter");
                    return ExitCode::from(2);
                }
            };
            let sdk = sdk.unwrap_or_else(easel::scaffold::default_sdk_dependency);
            match easel::scaffold::plugin_new(kind, &name, &dir, &sdk) {
                Ok(path) => {
                    println!("created {}", path.display());
                    println!("next: cd {} && cargo build --release --target wasm32-wasip2", path.display());
                    println!("then: easel plugin check {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("easel: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Plugin(PluginCommand::Check { dir }) => match easel::scaffold::plugin_check(&dir) {
            Ok(report) => {
                println!("ok: {} ({}) from {}", report.id, report.kind.as_str(), report.wasm.display());
                for line in report.offers {
                    println!("  offers {line}");
                }
                for line in report.asks {
                    println!("  asks for {line} (the operator must grant it under [plugins.{}])", report.id);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("easel plugin check: {e:#}");
                ExitCode::FAILURE
            }
        },
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
