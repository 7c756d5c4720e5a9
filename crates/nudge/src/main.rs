//! `nudge`: the one binary. It parses the command line, opens the store the settings name, and
//! wires the crates together; the work itself lives in the library crates.

mod bench;
mod bench_engine;
mod bench_send;
mod cli;
mod delivery;
mod dkim;
mod export;
mod import;
mod keys;
mod sequence;
mod serve;
mod settings;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // One TLS provider for the whole process (SMTP, PostgreSQL): ring, installed before any
    // connection is made. An error means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NUDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
