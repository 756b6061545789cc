//! Stand-alone `rvs-realserver setup|check|teardown|decap ...`, the same
//! command line as `rvs realserver ...` (used by the tests to start the
//! decapsulator as a real background process).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match rvs_realserver::main_args(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rvs-realserver: {err:#}");
            1
        }
    };
    std::process::exit(code);
}
