//! The simulator validates against its copy of the DRS API model, `sim/model/drs-service-2.json`
//! (embedded at build time); that copy must be the project's reference model,
//! `shared/reference/drs-service-2.json`, which lives beside the repository, not in it. The
//! reference's SHA-256 is pinned here, so the copy is compared with the reference on every machine
//! and in CI, whether or not the reference itself is at hand; where it is (a development
//! checkout), it is compared with the pin too, so a new reference cannot go unnoticed.

use std::path::Path;

use sha2::{Digest, Sha256};

/// SHA-256 of `shared/reference/drs-service-2.json` (botocore 1.44.8's DRS model).
const REFERENCE_SHA256: &str = "53dca24e03cffa22a6b825c5f1765665d0183ea0ca95f765779be00c71d6c0d3";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_committed_copy_is_the_reference_model() {
    let copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("model/drs-service-2.json");
    let bytes =
        std::fs::read(&copy).unwrap_or_else(|e| panic!("{} cannot be read: {e}", copy.display()));
    assert_eq!(
        sha256(&bytes),
        REFERENCE_SHA256,
        "{} is not the reference model: copy shared/reference/drs-service-2.json again",
        copy.display()
    );
    assert_eq!(
        drs_sim::embedded_model().as_bytes(),
        bytes,
        "the simulator embeds the committed copy"
    );
}

#[test]
fn the_reference_at_hand_is_the_pinned_one() {
    // `shared/` sits beside the repository root.
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/drs-service-2.json");
    let Ok(bytes) = std::fs::read(&reference) else {
        // Not at hand (a clean clone): the pin stands for it in the test above.
        return;
    };
    assert_eq!(
        sha256(&bytes),
        REFERENCE_SHA256,
        "{} changed: copy it to sim/model/ and pin its SHA-256 here",
        reference.display()
    );
}

#[test]
fn a_changed_copy_would_be_caught() {
    let mut bytes = drs_sim::embedded_model().as_bytes().to_vec();
    bytes.push(b'\n');
    assert_ne!(sha256(&bytes), REFERENCE_SHA256);
}
