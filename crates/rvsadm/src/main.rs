//! The `rvsadm` binary (also installable as `ipvsadm`): collects argv, the socket variable
//! and the standard streams, and exits with what [`rvsadm::run`] returns.

fn main() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    let names = rvsadm::SystemNames::default();
    let env = rvsadm::Environment { socket_env: std::env::var(rvsadm::SOCKET_ENV).ok(), names: &names };
    let (mut stdin, mut stdout, mut stderr) = (std::io::stdin().lock(), std::io::stdout().lock(), std::io::stderr());
    let code =
        rvsadm::run(&args, &env, &mut rvsadm::Streams { stdin: &mut stdin, stdout: &mut stdout, stderr: &mut stderr });
    std::process::exit(code);
}
