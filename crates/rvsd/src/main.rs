//! `rvsd --config FILE [--socket PATH] [--foreground]`: the rvs director daemon. The logic
//! lives in the library (`rvsd::Rvsd`); this file only reads the command line, loads the
//! configuration, binds the socket, detaches unless `--foreground`, and waits for signals.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rvsd::cli::{self, Invocation, Options, USAGE};
use rvsd::server::{self, ServerLimits};
use rvsd::signals::SignalWatcher;
use rvsd::{Rvsd, logging};

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run(o)) => o,
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("rvsd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rvsd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rvsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> anyhow::Result<()> {
    // Absolute paths: reloads re-read the file after a detach changed the directory to /.
    let config_path = std::path::absolute(&options.config).context("resolving the configuration path")?;
    let config = rvs_config::Config::load_for_host(&config_path)?;
    logging::init(config.director.log_level);
    let socket_path: PathBuf = match &options.socket {
        Some(p) => std::path::absolute(p).context("resolving the socket path")?,
        None => config.director.socket.clone(),
    };
    let socket = server::bind(&socket_path)?;
    if !options.foreground {
        // Detach before any thread exists; stderr stays open for the logs.
        if let Err(e) = nix::unistd::daemon(false, true) {
            let _ = std::fs::remove_file(&socket_path);
            return Err(e).context("detaching from the terminal");
        }
    }
    let signals = SignalWatcher::register().context("installing signal handlers")?;
    let rvsd = Rvsd::start(config_path, config, socket, ServerLimits::default())?;
    rvsd.run_until_signalled(signals);
    Ok(())
}
