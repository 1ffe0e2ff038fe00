//! The provider's clock, as seen from this machine.
//!
//! Token lifetimes (`exp`, `iat`) are the provider's clock; the API server that judges them
//! keeps the same time. A machine whose own clock is minutes off (WSL 2 after sleep, a VM after
//! suspend, a container without NTP) would judge every token wrongly, so each token response
//! measures the offset between the two clocks and every time decision about tokens uses the
//! provider's time: local time plus [`Offset`]. Only what client-go compares with this
//! machine's clock (the ExecCredential's `expirationTimestamp`) is turned back into local time.

/// Offsets up to this size are ordinary (network latency, the `Date` header's one-second
/// resolution, NTP slew); beyond it the user is told once per login or refresh.
pub const NOTICE_SECS: i64 = 60;

/// Seconds to add to this machine's time to get the provider's: positive when this machine
/// is behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offset(pub i64);

impl Offset {
    /// Measures the offset from a token response: the provider's `Date` header (the time
    /// the response was made, by the server that made the token) against `local`, this
    /// machine's time when the response arrived. Without a `Date` header the fresh ID token's
    /// `iat` may only move the clock forward: a token must never vouch for its own freshness
    /// (an `iat` an hour old would otherwise make a token that expired an hour ago look
    /// fresh). Judged by this machine's clock then, an old token stays old.
    pub fn measure(date: Option<i64>, id_token_iat: Option<i64>, local: i64) -> Offset {
        let max = crate::times::MAX_CLOCK_OFFSET;
        let offset = match (date, id_token_iat) {
            (Some(theirs), _) => theirs.saturating_sub(local),
            (None, Some(iat)) => iat.saturating_sub(local).max(0),
            (None, None) => 0,
        };
        Offset(offset.clamp(-max, max))
    }

    /// The provider's time now.
    pub fn now(self) -> i64 {
        crate::jwt::now().saturating_add(self.0)
    }

    /// A provider time in this machine's clock.
    pub fn to_local(self, provider_time: i64) -> i64 {
        provider_time.saturating_sub(self.0)
    }

    /// One line for stderr when this machine's clock is more than [`NOTICE_SECS`] off: how
    /// far, which way, that it is handled, and how to fix it.
    pub fn notice(self, provider_host: &str) -> Option<String> {
        if self.0.saturating_abs() <= NOTICE_SECS {
            return None;
        }
        let way = if self.0 < 0 { "ahead of" } else { "behind" };
        Some(format!(
            "this machine's clock is {} {way} {provider_host}'s; tokens are judged by the provider's clock, but fix this machine's (systemd: `sudo timedatectl set-ntp true`; WSL: `sudo hwclock -s` or `wsl --shutdown`; Windows: Settings > Time > Sync now){}",
            human(self.0.saturating_abs()),
            crate::troubleshooting::see("the-clock-is-off")
        ))
    }
}

/// "4 min 10 s", "1 h 2 min": how far apart two clocks are.
pub fn human(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_clocks_saturate_within_the_bound() {
        let max = crate::times::MAX_CLOCK_OFFSET;
        assert_eq!(Offset::measure(Some(i64::MAX), None, i64::MIN).0, max);
        assert_eq!(Offset::measure(Some(i64::MIN), None, i64::MAX).0, -max);
        assert_eq!(Offset::measure(None, Some(i64::MAX), -1).0, max);
        assert_eq!(Offset(i64::MAX).to_local(i64::MIN), i64::MIN);
        assert!(Offset(i64::MIN).notice("op").is_some());
        assert!(Offset(i64::MAX).now() > 0);
    }

    #[test]
    fn the_date_header_wins_over_iat() {
        assert_eq!(Offset::measure(Some(1_000), Some(500), 400), Offset(600));
        assert_eq!(Offset::measure(None, Some(500), 400), Offset(100));
        assert_eq!(Offset::measure(None, None, 400), Offset(0));
    }

    #[test]
    fn without_a_date_header_an_old_iat_does_not_turn_the_clock_back() {
        // A token issued an hour before this machine's now: judged by this machine's clock.
        assert_eq!(Offset::measure(None, Some(400 - 3_600), 400), Offset(0));
    }

    #[test]
    fn converts_provider_times_back_to_local_ones() {
        // This machine is 10 minutes ahead: the provider's 12:00 is its 12:10.
        let ahead = Offset(-600);
        assert_eq!(ahead.to_local(43_200), 43_800);
    }

    #[test]
    fn notices_only_offsets_past_a_minute_and_says_which_way() {
        assert_eq!(Offset(59).notice("kc"), None);
        assert_eq!(Offset(-60).notice("kc"), None);
        let behind = Offset(360).notice("kc.example.com").unwrap();
        assert!(behind.starts_with("this machine's clock is 6 min behind kc.example.com's"));
        let ahead = Offset(-3_600).notice("kc").unwrap();
        assert!(ahead.contains("1 h ahead of kc's"), "{ahead}");
        assert!(ahead.contains("timedatectl set-ntp true") && ahead.contains("hwclock -s"));
    }

    #[test]
    fn says_durations_as_people_do() {
        assert_eq!(human(5), "5 s");
        assert_eq!(human(240), "4 min");
        assert_eq!(human(250), "4 min 10 s");
        assert_eq!(human(3_600), "1 h");
        assert_eq!(human(3_720), "1 h 2 min");
    }
}
