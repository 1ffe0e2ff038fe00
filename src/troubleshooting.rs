//! Links from error messages and `doctor` findings to docs/troubleshooting.md, one anchor per
//! symptom. Every message that links does so through [`link`], so one place names the address
//! and tests/suite/docs.rs can check that each anchor used here exists on the page.

/// Where the troubleshooting page is published (the repository's default branch).
pub const PAGE: &str =
    "https://github.com/kubectl-oidc-login/kubectl-oidc-login/blob/main/docs/troubleshooting.md";

/// The address of one symptom's entry: `anchor` is the entry's heading as GitHub makes it an
/// anchor (lower case, spaces as `-`).
pub fn link(anchor: &str) -> String {
    format!("{PAGE}#{anchor}")
}

/// `; see <link>`, the tail a linking message ends with.
pub fn see(anchor: &str) -> String {
    format!("; see {}", link(anchor))
}
