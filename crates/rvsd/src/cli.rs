//! The command line: `rvsd --config FILE [--socket PATH] [--foreground]`.

use std::ffi::OsString;
use std::path::PathBuf;

/// Usage text.
pub const USAGE: &str = "Usage: rvsd --config FILE [--socket PATH] [--foreground]

  -c, --config FILE   the TOML configuration (see docs/config.md)
  -s, --socket PATH   admin socket (default: [director] socket, else /run/rvsd.sock)
  -f, --foreground    stay in the foreground (default: detach from the terminal)
  -h, --help          this text
  -V, --version       the version

Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop rvsd.";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Configuration file.
    pub config: PathBuf,
    /// Admin socket override.
    pub socket: Option<PathBuf>,
    /// Do not detach.
    pub foreground: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run the daemon.
    Run(Options),
    /// Print the usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, String> {
    let mut config = None;
    let mut socket = None;
    let mut foreground = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(OsString::from(v))),
            _ => (text.clone(), None),
        };
        let mut value = |what: &str| -> Result<PathBuf, String> {
            inline.clone().or_else(|| args.next()).map(PathBuf::from).ok_or_else(|| format!("{what} needs a value"))
        };
        match name.as_str() {
            "-c" | "--config" => config = Some(value("--config")?),
            "-s" | "--socket" => socket = Some(value("--socket")?),
            "-f" | "--foreground" if inline.is_none() => foreground = true,
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            _ => return Err(format!("unknown argument `{text}'")),
        }
    }
    let config = config.ok_or("--config FILE is required")?;
    Ok(Invocation::Run(Options { config, socket, foreground }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Invocation, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn flags_and_values() {
        assert_eq!(
            args(&["--config", "/etc/rvs.toml", "--socket=/tmp/s", "-f"]),
            Ok(Invocation::Run(Options {
                config: "/etc/rvs.toml".into(),
                socket: Some("/tmp/s".into()),
                foreground: true
            }))
        );
        assert_eq!(
            args(&["-c", "a.toml"]),
            Ok(Invocation::Run(Options { config: "a.toml".into(), socket: None, foreground: false }))
        );
        assert_eq!(args(&["--help"]), Ok(Invocation::Help));
        assert!(args(&[]).is_err());
        assert!(args(&["--config"]).is_err());
        assert!(args(&["--config", "x", "--bogus"]).is_err());
    }
}
