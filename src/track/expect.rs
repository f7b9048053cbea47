//! When a step's running jobs should end, learnt from its jobs that did: the shortest a job of the
//! step has taken so far (DRS's `creationDateTime` to `endDateTime`), carried by the step's loop
//! (`jobSeconds`) from call to call. A tracking call that knows it asks for the next one just
//! after the first running job should end ([`crate::launch::next::track_wait`]), so the next
//! wave is launched within seconds of the quota freeing up instead of up to a whole interval
//! later — without tracking more often than once an interval on average.

use std::time::{Duration, SystemTime};

use crate::drs::JobRecord;
use crate::drs::state::LaunchStatus;

/// The next tracking call comes this long after a job's expected end: DRS dates the end when the
/// job's last launch is final, and the instances' results follow it.
pub const EXPECTED_END_MARGIN: Duration = Duration::from_secs(5);

/// What a tracking call's jobs say of how long a job takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expectation {
    /// The shortest job of the step so far, in whole seconds: the loop's, or a shorter one just
    /// seen.
    pub job_seconds: Option<u64>,
    /// Seconds from `now` to the first running job's expected end, the margin included (0: due
    /// already); none until a job's length is known.
    pub until_end_seconds: Option<u64>,
}

/// From the step's `known` shortest job and the `jobs` a tracking call read, at `now`.
pub fn expect(known: Option<u64>, jobs: &[&JobRecord], now: SystemTime) -> Expectation {
    // A job teaches its length only if it launched something: one whose launches all failed
    // early is no measure of the others.
    let launched = |job: &&&JobRecord| {
        job.participants
            .iter()
            .any(|p| p.launch_status == Some(LaunchStatus::Launched))
    };
    let seen = jobs
        .iter()
        .filter(|job| !job.is_active())
        .filter(launched)
        .filter_map(|job| job.ended?.duration_since(job.created?).ok())
        .map(|took| took.as_secs())
        .min();
    let job_seconds = match (known, seen) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let until_end_seconds = job_seconds.and_then(|seconds| {
        jobs.iter()
            .filter(|job| job.is_active())
            .filter_map(|job| job.created)
            .map(|created| created + Duration::from_secs(seconds) + EXPECTED_END_MARGIN)
            .min()
            .map(|end| {
                end.duration_since(now).map_or(0, |left| {
                    left.as_secs() + u64::from(left.subsec_nanos() > 0)
                })
            })
    });
    Expectation {
        job_seconds,
        until_end_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drs::JobStatus;

    fn job(status: JobStatus, created: u64, ended: Option<u64>) -> JobRecord {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let launch_status = Some(if ended.is_some() {
            LaunchStatus::Launched
        } else {
            LaunchStatus::Pending
        });
        JobRecord {
            job_id: format!("drsjob-{created}"),
            arn: None,
            status,
            kind: crate::drs::JobType::Launch,
            run_id: None,
            step: None,
            created: Some(at(created)),
            ended: ended.map(at),
            participants: vec![crate::drs::Participant {
                launch_status,
                ..crate::drs::Participant::default()
            }],
        }
    }

    fn now(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn nothing_is_expected_before_a_job_has_ended() {
        let running = job(JobStatus::Started, 1000, None);
        assert_eq!(expect(None, &[&running], now(1100)), Expectation::default());
    }

    #[test]
    fn the_first_running_job_is_expected_to_take_as_long_as_the_shortest_that_ended() {
        let done_long = job(JobStatus::Completed, 0, Some(1300));
        let done_short = job(JobStatus::Completed, 10, Some(1240));
        let later = job(JobStatus::Started, 1300, None);
        let earlier = job(JobStatus::Pending, 1250, None);
        let e = expect(
            None,
            &[&done_long, &done_short, &later, &earlier],
            now(1260),
        );
        assert_eq!(e.job_seconds, Some(1230));
        // 1250 + 1230 + 5 margin - 1260
        assert_eq!(e.until_end_seconds, Some(1225));
        // the loop's shorter length wins; past the expected end it is due
        let e = expect(Some(600), &[&later, &earlier], now(2000));
        assert_eq!(
            e,
            Expectation {
                job_seconds: Some(600),
                until_end_seconds: Some(0)
            }
        );
    }

    #[test]
    fn a_job_whose_launches_all_failed_teaches_nothing() {
        let mut failed_fast = job(JobStatus::Completed, 0, Some(120));
        failed_fast.participants[0].launch_status = Some(LaunchStatus::Failed);
        let running = job(JobStatus::Started, 100, None);
        assert_eq!(
            expect(None, &[&failed_fast, &running], now(200)),
            Expectation::default()
        );
    }
}
