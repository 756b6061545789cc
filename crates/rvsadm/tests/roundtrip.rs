//! `-S` then `-R`: the saved text parses back into commands that rebuild the same table
//! (minus thresholds, which ipvsadm's save format does not carry), and `-R` input handling.

mod common;

use common::FakeDirector;
use rvs_api::Command;
use rvsadm::error::CliError;
use rvsadm::names::NumericNames;
use rvsadm::parse::{Action, parse_command_line};
use rvsadm::render::save::render_save;
use rvsadm::restore::{line_words, parse_restore};
use rvsadm::sort::sort_services;

fn command(line: &str) -> Command {
    let args: Vec<String> = std::iter::once("rvsadm").chain(line.split_whitespace()).map(String::from).collect();
    match parse_command_line(&args, &NumericNames).unwrap_or_else(|e| panic!("{line}: {e}")).action {
        Action::Apply(c) => c,
        other => panic!("{other:?}"),
    }
}

const SETUP: &[&str] = &[
    "-A -t 198.18.0.10:80 -s wlc -p 300 -M 255.255.255.0",
    "-a -t 198.18.0.10:80 -r 198.18.1.3:80 -m -w 0",
    "-a -t 198.18.0.10:80 -r 198.18.1.2 -g -w 5 -x 100 -y 50",
    "-A -u 198.18.0.10:53 -s sh -b sh-fallback,sh-port -o",
    "-a -u 198.18.0.10:53 -r 198.18.1.4 -i -w 3",
    "-a -u 198.18.0.10:53 -r 198.18.1.5 -i --tun-type gue --tun-port 6080 --tun-csum",
    "-a -u 198.18.0.10:53 -r 198.18.1.6 -i --tun-type gre --tun-nocsum",
    "-A -t [fd00::10]:443 -s rr -p 60 -M 64",
    "-a -t [fd00::10]:443 -r [fd00::20]:8443 -m -w 2",
    "-A -f 1 -s mh -b mh-port",
    "-a -f 1 -r 198.18.1.7:0 -g",
    "-A -f 2 -6 -s lc",
    "-A --sctp-service 198.18.0.11:9 -s nq",
];

#[test]
fn save_then_restore_rebuilds_the_same_table() {
    let mut original = FakeDirector::default();
    original.apply(&SETUP.iter().map(|l| command(l)).collect::<Vec<_>>()).expect("setup applies");
    let saved = render_save(&original.table(), true, &NumericNames);

    let commands: Vec<Command> =
        parse_restore(&saved, &NumericNames).expect("saved text parses").into_iter().map(|(_, c)| c).collect();
    assert_eq!(commands.len(), SETUP.len());
    let mut restored = FakeDirector::default();
    restored.apply(&commands).expect("restore applies");

    let mut want = original.table();
    // The save format has no -x/-y: thresholds are lost, exactly as with ipvsadm.
    for s in &mut want.services {
        for d in &mut s.dests {
            d.spec.u_threshold = 0;
            d.spec.l_threshold = 0;
        }
    }
    let mut got = restored.table();
    sort_services(&mut want.services);
    sort_services(&mut got.services);
    assert_eq!(got, want);
    // And saving again gives the same text.
    assert_eq!(render_save(&restored.table(), true, &NumericNames), saved);
}

#[test]
fn restore_lines_allow_program_name_comments_and_blank_lines() {
    assert_eq!(line_words("ipvsadm -A -t 1.2.3.4:80"), vec!["-A", "-t", "1.2.3.4:80"]);
    assert_eq!(line_words("/sbin/rvsadm -C # flush"), vec!["-C"]);
    assert!(line_words("# only a comment").is_empty());
    let text = "\n# rules\nipvsadm -A -t 1.2.3.4:80 -s rr\n\n-a -t 1.2.3.4:80 -r 10.0.0.2 # web\n";
    let parsed = parse_restore(text, &NumericNames).expect("parses");
    assert_eq!(parsed.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![3, 5]);
}

#[test]
fn restore_stops_at_the_first_bad_line_with_its_number() {
    let text = "-A -t 1.2.3.4:80\n-a -t 1.2.3.4:80 -r 10.0.0.2 -w 70000\n-A -t bogus\n";
    let err = parse_restore(text, &NumericNames).unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(err.error, CliError::Usage("illegal weight specified".into()));
    assert_eq!(err.render("rvsadm"), "line 2: illegal weight specified\n");
    // -R inside -R input is refused as ipvsadm does (try-help, exit 255).
    let err = parse_restore("-R\n", &NumericNames).unwrap_err();
    assert_eq!((err.line, err.error.exit_code()), (1, 255));
    // Listings cannot be restored.
    let err = parse_restore("-C\n-L -n\n", &NumericNames).unwrap_err();
    assert_eq!((err.line, err.error.exit_code()), (2, 2));
    // rvsadm's own options are not restore syntax.
    let err = parse_restore("-C --socket /x\n", &NumericNames).unwrap_err();
    assert_eq!(err.error, CliError::Usage("invalid option `/x'".into()));
}
