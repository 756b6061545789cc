//! Replays every file of every fuzz target's corpus (`fuzz/corpus/<target>/`)
//! through the same entry points the cargo-fuzz targets call, so the corpus is a
//! regression suite on stable `cargo test`.

use std::fs;
use std::path::PathBuf;

use rvs_packet::fuzzing;

/// A fuzz entry point.
type Entry = fn(&[u8]);

/// Every fuzz target and its entry point; fuzz/fuzz_targets/<name>.rs calls the same.
const TARGETS: [(&str, Entry); 10] = [
    ("frame", fuzzing::frame),
    ("ip", fuzzing::ip),
    ("ethernet", fuzzing::ethernet),
    ("arp", fuzzing::arp),
    ("ipv4", fuzzing::ipv4),
    ("ipv6", fuzzing::ipv6),
    ("tcp", fuzzing::tcp),
    ("udp", fuzzing::udp),
    ("icmp", fuzzing::icmp),
    ("tunnel", fuzzing::tunnel),
];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn replay_every_corpus_file() {
    for (name, entry) in TARGETS {
        let dir = corpus_dir().join(name);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
            .map(|entry| entry.expect("readable directory entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target {name} has an empty corpus");
        for path in files {
            let data = fs::read(&path).expect("readable corpus file");
            entry(&data);
        }
    }
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let targets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (name, _) in TARGETS {
        let source = fs::read_to_string(targets.join(format!("{name}.rs"))).expect("target source exists");
        assert!(source.contains(&format!("fuzzing::{name}(")), "fuzz target {name} calls fuzzing::{name}");
    }
}

#[test]
fn short_inputs_of_every_length() {
    // Cheap sweep: every prefix of a byte ramp through every target.
    let ramp: Vec<u8> = (0..=255u8).collect();
    for (_, entry) in TARGETS {
        for len in 0..80 {
            entry(&ramp[..len]);
        }
    }
}
