//! Start-to-exit against the boto3 peer (crate::boto3), judged on the median of the paired
//! ratios.

use super::{Target, verdict};
use crate::boto3::{Comparison, TARGET_RATIO};
use crate::report::{Report, ms, plural};

pub(super) fn start_to_exit(report: &Report) -> Target {
    row(report.boto3.as_ref())
}

/// `None`: a report written before the comparison existed.
fn row(comparison: Option<&Result<Comparison, String>>) -> Target {
    let not_measured = |reason: String| Target {
        name: format!(
            "start-to-exit ≥ {TARGET_RATIO}× faster than a boto3 Lambda (Runtime API unreachable, paired runs)"
        ),
        measured: "—".into(),
        peer: String::new(),
        verdict: "**NOT MEASURED**",
        reason,
    };
    let c = match comparison {
        None => return not_measured("not measured by the run that wrote this report".into()),
        Some(Err(cause)) => return not_measured(cause.clone()),
        Some(Ok(c)) => c,
    };
    let (Some(rust), Some(boto3), Some(ratio), Some((min, max))) = (
        c.rust_median(),
        c.boto3_median(),
        c.ratio(),
        c.ratio_range(),
    ) else {
        return not_measured("no pair completed".into());
    };
    let met = ratio >= TARGET_RATIO;
    let mut reason = if met {
        format!(
            "{:.2}× the target; per-pair ratios {min:.1}×–{max:.1}×",
            ratio / TARGET_RATIO
        )
    } else {
        format!(
            "{:.1}× short: {TARGET_RATIO}× the Rust median is {} ms; per-pair ratios {min:.1}×–{max:.1}×",
            TARGET_RATIO - ratio,
            ms(rust.mul_f64(TARGET_RATIO))
        )
    };
    reason.push_str(&format!(
        "; both exit 1 at their first `invocation/next` (the Rust binary: {})",
        c.rust_exit
    ));
    if !c.failures.is_empty() {
        reason.push_str(&format!(
            "; {} (left out with its pair): {}",
            plural(c.failures.len(), "failed run"),
            c.failures.join("; ")
        ));
    }
    Target {
        name: format!(
            "start-to-exit ≥ {TARGET_RATIO}× faster than a boto3 Lambda (Runtime API unreachable, median of {} paired runs)",
            c.pairs.len()
        ),
        measured: format!(
            "Rust median {} ms, boto3 median {} ms, ratio {ratio:.1}× (paired median)",
            ms(rust),
            ms(boto3)
        ),
        peer: format!("boto3 {}, Python {}", c.boto3, c.python),
        verdict: verdict(met),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::boto3::Pair;

    fn comparison(pairs: &[(u64, u64)]) -> Comparison {
        Comparison {
            boto3: "1.44.8".into(),
            python: "3.11.7".into(),
            pairs: pairs
                .iter()
                .enumerate()
                .map(|(i, &(rust, boto3))| Pair {
                    rust: Duration::from_micros(rust),
                    boto3: Duration::from_micros(boto3),
                    rust_first: i % 2 == 0,
                })
                .collect(),
            failures: Vec::new(),
            rust_exit: "exit status: 1".into(),
        }
    }

    #[test]
    fn met() {
        let t = row(Some(&Ok(comparison(&[
            (4_000, 300_000),
            (5_000, 350_000),
            (4_000, 320_000),
        ]))));
        assert_eq!(t.verdict, "**MET**");
        assert_eq!(
            t.name,
            "start-to-exit ≥ 60× faster than a boto3 Lambda (Runtime API unreachable, median of 3 paired runs)"
        );
        assert_eq!(
            t.measured,
            "Rust median 4.00 ms, boto3 median 320.00 ms, ratio 75.0× (paired median)"
        );
        assert_eq!(t.peer, "boto3 1.44.8, Python 3.11.7");
        assert_eq!(
            t.reason,
            "1.25× the target; per-pair ratios 70.0×–80.0×; both exit 1 at their first `invocation/next` (the Rust binary: exit status: 1)"
        );
    }

    #[test]
    fn not_met_says_by_how_much() {
        let mut c = comparison(&[(5_000, 250_000), (5_000, 260_000), (5_000, 240_000)]);
        c.failures = vec!["pair 4: the Rust binary did not exit within 10s (killed)".into()];
        let t = row(Some(&Ok(c)));
        assert_eq!(t.verdict, "**NOT MET**");
        assert_eq!(
            t.measured,
            "Rust median 5.00 ms, boto3 median 250.00 ms, ratio 50.0× (paired median)"
        );
        assert_eq!(
            t.reason,
            "10.0× short: 60× the Rust median is 300.00 ms; per-pair ratios 48.0×–52.0×; both exit 1 at their \
             first `invocation/next` (the Rust binary: exit status: 1); 1 failed run (left out with its pair): pair 4: the Rust binary \
             did not exit within 10s (killed)"
        );
    }

    #[test]
    fn not_measured_gives_the_cause() {
        let t = row(Some(&Err("python3 -m venv failed".into())));
        assert_eq!(t.verdict, "**NOT MEASURED**");
        assert_eq!(t.reason, "python3 -m venv failed");
        assert_eq!(t.measured, "—");
        let old = row(None);
        assert_eq!(old.verdict, "**NOT MEASURED**");
        assert_eq!(old.reason, "not measured by the run that wrote this report");
        assert_eq!(row(Some(&Ok(comparison(&[])))).reason, "no pair completed");
    }
}
