//! Providers known to name one user by another `sub` in each application's tokens (pairwise
//! subjects), and the identifier of theirs that stays the same.
//!
//! Microsoft Entra ID is the one known here. Its documentation (ID token and access token
//! claims references, learn.microsoft.com/entra/identity-platform/) says: `sub` is "a pairwise
//! identifier that's unique to a particular application ID", so an access token for another
//! resource (the cluster's API app) names the user by another `sub` than the login's ID token;
//! `oid` "uniquely identifies the requestor across applications" within a tenant, and `tid`
//! is the tenant. The same user is therefore the same `oid` in the same tenant, and Microsoft
//! asks that a `tid` used as a trust boundary be a GUID that matches the issuer's tenant.
//! An access token may be v1.0 (issuer `https://sts.windows.net/{tid}/`) while the ID token is
//! v2.0 (`https://login.microsoftonline.com/{tid}/v2.0`): the resource chooses the version.
//!
//! Nothing here applies to any other issuer: there `sub` and `iss` decide, as before.

/// Where an Entra tenant signs tokens: the cloud (tokens of two clouds never name one user)
/// and the tenant GUID.
#[derive(Debug, PartialEq, Eq)]
struct Tenant<'a> {
    cloud: &'static str,
    id: &'a str,
}

/// The Entra tenant of issuer `iss`, when it is one of the documented forms: v2.0
/// `https://HOST/{tid}/v2.0` at the global, US Government and China authentication hosts, or
/// v1.0 `https://sts.windows.net/{tid}/` (global). The national clouds' v1.0 issuers are not
/// listed in the documents read, so they are not recognised (the strict check applies).
fn tenant(iss: &str) -> Option<Tenant<'_>> {
    let rest = iss.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let (cloud, id) = match host {
        "login.microsoftonline.com" => ("global", path.strip_suffix("/v2.0")?),
        "login.microsoftonline.us" => ("usgov", path.strip_suffix("/v2.0")?),
        "login.partner.microsoftonline.cn" => ("china", path.strip_suffix("/v2.0")?),
        "sts.windows.net" => ("global", path.strip_suffix('/')?),
        _ => return None,
    };
    is_guid(id).then_some(Tenant { cloud, id })
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The claims that name a user at such a provider.
pub struct Claims<'a> {
    pub iss: Option<&'a str>,
    pub oid: Option<&'a str>,
    pub tid: Option<&'a str>,
}

/// Whether `iss` is an issuer known to issue pairwise subjects.
pub fn is_pairwise_issuer(iss: Option<&str>) -> bool {
    iss.and_then(tenant).is_some()
}

/// Whether `a` and `b` name the same user at a provider with pairwise subjects: both issued by
/// it in one cloud and one tenant, each `tid` that tenant, and the same `oid`. False for any
/// other issuer, and when a claim is missing: the caller's `sub` comparison then decides.
pub fn same_user(a: &Claims, b: &Claims) -> bool {
    match (tenant_of(a), tenant_of(b), a.oid, b.oid) {
        (Some(ta), Some(tb), Some(oa), Some(ob)) => ta == tb && oa == ob && !oa.is_empty(),
        _ => false,
    }
}

/// The tenant of `c`'s issuer, when `c`'s `tid` names that same tenant.
fn tenant_of<'a>(c: &Claims<'a>) -> Option<Tenant<'a>> {
    let t = c.iss.and_then(tenant)?;
    (c.tid == Some(t.id)).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";

    fn claims<'a>(iss: &'a str, oid: Option<&'a str>, tid: Option<&'a str>) -> Claims<'a> {
        Claims {
            iss: Some(iss),
            oid,
            tid,
        }
    }

    #[test]
    fn entra_issuers_are_recognised_by_their_documented_forms_only() {
        let v2 = format!("https://login.microsoftonline.com/{TID}/v2.0");
        let v1 = format!("https://sts.windows.net/{TID}/");
        assert!(is_pairwise_issuer(Some(&v2)));
        assert!(is_pairwise_issuer(Some(&v1)));
        for other in [
            "https://keycloak.example.com/realms/platform".to_string(),
            format!("http://login.microsoftonline.com/{TID}/v2.0"),
            format!("https://login.microsoftonline.com.evil.example/{TID}/v2.0"),
            "https://login.microsoftonline.com/common/v2.0".to_string(),
            format!("https://login.microsoftonline.com/{TID}/v2.0/extra"),
            format!("https://sts.windows.net/{TID}"),
            format!("https://login.microsoftonline.com/{TID}x/v2.0"),
        ] {
            assert!(!is_pairwise_issuer(Some(&other)), "{other}");
        }
        assert!(!is_pairwise_issuer(None));
    }

    #[test]
    fn the_same_oid_in_the_same_tenant_is_the_same_user_across_token_versions() {
        let v2 = format!("https://login.microsoftonline.com/{TID}/v2.0");
        let v1 = format!("https://sts.windows.net/{TID}/");
        let id_token = claims(&v2, Some(OID), Some(TID));
        assert!(same_user(&id_token, &claims(&v1, Some(OID), Some(TID))));
        assert!(same_user(&id_token, &claims(&v2, Some(OID), Some(TID))));

        let other_tid = "11111111-2222-3333-4444-555555555555";
        let other_v1 = format!("https://sts.windows.net/{other_tid}/");
        let refused = [
            // Another user of the tenant.
            claims(&v1, Some("00000000-0000-0000-0000-000000000001"), Some(TID)),
            // The same oid in another tenant (another account, by Microsoft's documents).
            claims(&other_v1, Some(OID), Some(other_tid)),
            // A tid that is not the issuer's tenant.
            claims(&v1, Some(OID), Some(other_tid)),
            // No oid or no tid: nothing to compare but sub.
            claims(&v1, None, Some(TID)),
            claims(&v1, Some(OID), None),
            // Another provider altogether.
            claims("https://idp.example.com", Some(OID), Some(TID)),
        ];
        for access in &refused {
            assert!(!same_user(&id_token, access), "{:?}", access.iss);
        }
        // Another cloud's issuer with the same tenant GUID is another cloud's account.
        let usgov = format!("https://login.microsoftonline.us/{TID}/v2.0");
        assert!(!same_user(&id_token, &claims(&usgov, Some(OID), Some(TID))));
        // A login without oid (no `profile` scope) matches nothing.
        assert!(!same_user(
            &claims(&v2, None, Some(TID)),
            &claims(&v1, None, Some(TID))
        ));
    }
}
