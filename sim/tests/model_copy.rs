//! The simulator validates against its own copy of the DRS API model (embedded at build time);
//! it must stay byte-identical to the project's reference copy.

use std::path::Path;

#[test]
fn embedded_model_is_the_reference_model() {
    let copy = Path::new(env!("CARGO_MANIFEST_DIR")).join("model/drs-service-2.json");
    let on_disk = std::fs::read(&copy).expect("sim/model/drs-service-2.json");
    assert_eq!(
        on_disk,
        drs_sim::embedded_model().as_bytes(),
        "the embedded model is the committed copy"
    );

    // The reference lives in shared/, beside the repository root (`../shared/reference/...`).
    let repo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reference = repo_root.join("../shared/reference/drs-service-2.json");
    match std::fs::read(&reference) {
        Ok(bytes) => assert!(
            bytes == on_disk,
            "sim/model/drs-service-2.json differs from {}: copy it again",
            reference.display()
        ),
        Err(e) => println!(
            "note: {} not readable ({e}); copy check skipped",
            reference.display()
        ),
    }
}
