//! The Unix times a token can carry here. Every time taken from outside (a token's `exp`, a
//! provider's `expires_in`, its clock) is kept within these bounds, so no arithmetic on it
//! can overflow and kubectl can always read it back.

/// The last second RFC 3339, and so kubectl, can write: 9999-12-31T23:59:59Z.
pub const LATEST: i64 = 253_402_300_799;

/// Farther apart than this, the provider's clock and this machine's are not drift but a
/// damaged value.
pub const MAX_CLOCK_OFFSET: i64 = 10 * 365 * 86_400;

/// A time from outside within 0 ..= [`LATEST`].
pub fn sane_time(t: i64) -> i64 {
    t.clamp(0, LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_to_what_can_be_written() {
        assert_eq!(sane_time(i64::MAX), LATEST);
        assert_eq!(sane_time(i64::MIN), 0);
        assert_eq!(sane_time(1_800_000_000), 1_800_000_000);
    }
}
