//! DRS's identifiers, as the API model's patterns state them: what can never name a recovery
//! instance, a source server or a job is known without asking DRS.

/// Pattern and lengths of `RecoveryInstanceID` in the DRS API model.
pub const INSTANCE_ID_MIN_LEN: usize = 10;
pub const INSTANCE_ID_MAX_LEN: usize = 19;

/// `s-[0-9a-zA-Z]{17}`, as the DRS API model states.
pub fn is_valid_source_server_id(id: &str) -> bool {
    id.len() == 19 && id.starts_with("s-") && id[2..].bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `i-[0-9a-fA-F]{8,}` with 10–19 characters, as the DRS API model states.
pub fn is_valid_instance_id(id: &str) -> bool {
    (INSTANCE_ID_MIN_LEN..=INSTANCE_ID_MAX_LEN).contains(&id.len())
        && id.starts_with("i-")
        && id[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `drsjob-` and 17 letters or digits, as the DRS API model states.
pub fn is_valid_job_id(id: &str) -> bool {
    id.len() == 24
        && id.starts_with("drsjob-")
        && id[7..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "drsjob-0123456789abcdefg";

    #[test]
    fn instance_id_rules_follow_the_api_model() {
        assert!(is_valid_instance_id("i-12345678"));
        assert!(is_valid_instance_id("i-0123456789abcdef0"));
        assert!(is_valid_instance_id("i-ABCDEF0123"));
        assert!(!is_valid_instance_id("i-1234567"), "too short");
        assert!(
            !is_valid_instance_id("i-0123456789abcdef01"),
            "20 characters"
        );
        assert!(!is_valid_instance_id("i-0123456z"), "not hex");
        assert!(!is_valid_instance_id("x-01234567"));
        assert!(
            !is_valid_instance_id("i-０１２３４５６７"),
            "non-ASCII digits"
        );
    }

    #[test]
    fn job_ids_follow_the_api_model() {
        assert!(is_valid_job_id(JOB));
        assert!(!is_valid_job_id("drsjob-0123456789abcdef"));
        assert!(!is_valid_job_id("drsjob-0123456789abcdef!"));
        assert!(!is_valid_job_id("xxxjob-0123456789abcdefg"));
    }
}
