//! The `rvs realserver ...` command line: `setup`, `check`, `teardown` and
//! `decap`, parsed with clap, with the exit codes scripts rely on (0 ready or
//! done, 1 `check` found problems, 2 bad usage).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use rvs_lab::Method;

use crate::check::{CheckRequest, check};
use crate::decap::{DEFAULT_TUN_PATTERN, DecapConfig, Decapsulator, MECHANISM};
use crate::setup::{DecapLaunch, Launcher, SetupRequest, describe, parse_method, setup, teardown};
use crate::state;

#[derive(Debug, Parser)]
#[command(name = "rvs realserver", about = "Prepare this host as an LVS real server (DR, TUN or NAT) and check it")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// VIP on lo, ARP sysctls, rp_filter and decapsulator (TUN), default route (NAT); recorded for teardown.
    Setup(SetupArgs),
    /// Explain every wrong or missing setting; exit 1 if anything is wrong.
    Check(CheckArgs),
    /// Undo exactly what setup did.
    Teardown(Where),
    /// Run the LVS-TUN decapsulator in the foreground (setup starts it in the background).
    Decap(DecapArgs),
}

#[derive(Debug, Args)]
struct Where {
    /// Network namespace to work in (default: this one).
    #[arg(long)]
    netns: Option<String>,
    /// Directory of the state, status and log files.
    #[arg(long, default_value = state::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// Virtual address served (repeat for several; IPv4 or IPv6).
    #[arg(long = "vip")]
    vips: Vec<IpAddr>,
    /// Forwarding method of the director towards this server.
    #[arg(long, value_parser = parse_method)]
    method: Method,
    /// Interface facing the director (repeatable; default: those of the default routes).
    #[arg(long = "uplink")]
    uplinks: Vec<String>,
    /// Default gateway to install (NAT: the director; repeat once per address family).
    #[arg(long = "gateway")]
    gateways: Vec<IpAddr>,
    /// TUN device name of the decapsulator (`%d` = first free number).
    #[arg(long, default_value = DEFAULT_TUN_PATTERN)]
    tun_name: String,
    #[command(flatten)]
    place: Where,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// VIP to check (default: those setup recorded).
    #[arg(long = "vip")]
    vips: Vec<IpAddr>,
    /// Method to check for (default: the one setup recorded).
    #[arg(long, value_parser = parse_method)]
    method: Option<Method>,
    /// Uplink to check (default: recorded, else those of the default routes).
    #[arg(long = "uplink")]
    uplinks: Vec<String>,
    /// Gateway the default route must use (NAT: the director).
    #[arg(long = "gateway")]
    gateways: Vec<IpAddr>,
    #[command(flatten)]
    place: Where,
}

#[derive(Debug, Args)]
struct DecapArgs {
    /// Inner destination to accept (repeat); everything else is dropped.
    #[arg(long = "vip", required = true)]
    vips: Vec<IpAddr>,
    /// TUN device name (`%d` = first free number).
    #[arg(long, default_value = DEFAULT_TUN_PATTERN)]
    tun_name: String,
    /// Name of the status and pid files (default: the namespace name, or `host`).
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    place: Where,
}

/// Runs `rvs realserver <args>`; `args` start with the subcommand
/// (`["setup", "--vip", ...]`). Returns the process exit code.
pub fn main_args(args: &[String]) -> anyhow::Result<i32> {
    let argv = std::iter::once("rvs realserver".to_owned()).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            err.print().context("printing usage")?;
            return Ok(code);
        }
    };
    let launcher = self_launcher(args)?;
    match cli.command {
        Command::Setup(args) => {
            let mut request = SetupRequest::new(args.method, args.vips);
            request.uplinks = args.uplinks;
            request.gateways = args.gateways;
            request.netns = args.place.netns;
            request.state_dir = args.place.state_dir;
            request.tun_name = args.tun_name;
            request.decap = DecapLaunch::Daemon(launcher);
            let record = setup(&request)?;
            for line in describe(&record) {
                println!("{line}");
            }
            println!("setup done; `rvs realserver check` verifies it, `rvs realserver teardown` undoes it");
            Ok(0)
        }
        Command::Check(args) => {
            let request = CheckRequest {
                method: args.method,
                vips: args.vips,
                uplinks: args.uplinks,
                gateways: args.gateways,
                netns: args.place.netns,
                state_dir: args.place.state_dir,
            };
            let report = check(&request)?;
            print!("{}", report.render());
            Ok(if report.ok() { 0 } else { 1 })
        }
        Command::Teardown(place) => {
            for line in teardown(place.netns.as_deref(), &place.state_dir)? {
                println!("{line}");
            }
            println!("teardown done");
            Ok(0)
        }
        Command::Decap(args) => run_decapsulator(args).map(|()| 0),
    }
}

/// How to start this very program again with `decap`: the executable, plus
/// whatever came between it and `args` on its command line (`realserver` for
/// `rvs realserver setup ...`, nothing for `rvs-realserver setup ...`).
fn self_launcher(args: &[String]) -> anyhow::Result<Launcher> {
    let program = std::env::current_exe().context("finding this program's path")?;
    let argv: Vec<String> = std::env::args().collect();
    let leading_args = match argv.len().checked_sub(args.len()) {
        Some(split) if split >= 1 && argv.get(split..) == Some(args) => argv.get(1..split).unwrap_or(&[]).to_vec(),
        _ => vec!["realserver".to_owned()],
    };
    Ok(Launcher { program, leading_args })
}

/// `decap`: enters the namespace, opens the decapsulator, publishes its status
/// and pid, and runs until SIGTERM/SIGINT/SIGHUP.
fn run_decapsulator(args: DecapArgs) -> anyhow::Result<()> {
    if let Some(netns) = &args.place.netns {
        // Before any thread or socket exists, so everything lives in the namespace.
        rvs_lab::netns::enter(netns)?;
    }
    let id = args.id.clone().unwrap_or_else(|| state::id_of(args.place.netns.as_deref()));
    let dir = &args.place.state_dir;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
    }
    let config = DecapConfig {
        vips: args.vips.clone(),
        tun_name: args.tun_name.clone(),
        status_file: Some(state::status_path(dir, &id)),
    };
    let mut decapsulator = Decapsulator::open(&config)?;
    let pid_file = state::pid_path(dir, &id);
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;
    let vips: Vec<String> = args.vips.iter().map(IpAddr::to_string).collect();
    eprintln!(
        "rvs realserver decap: pid {} device {} VIPs {}: {MECHANISM}",
        std::process::id(),
        decapsulator.tun_name(),
        vips.join(" ")
    );
    let result = decapsulator.run(&stop);
    let status = decapsulator.status();
    eprintln!(
        "rvs realserver decap: stopping; decapsulated {} dropped {} not-VIP, {} malformed, {} TUN write",
        status.decapsulated, status.dropped_not_vip, status.dropped_malformed, status.dropped_write
    );
    let _ = state::remove(&pid_file);
    let _ = state::remove(&state::status_path(dir, &id));
    Ok(result?)
}
