//! How kubelogin's command line reads a flag's value: spf13/pflag's rules for the value types
//! kubelogin declares (pflag v1.0.10, Go's encoding/csv). clap hands over each raw value;
//! these functions give it pflag's meaning, so a kubeconfig written for kubelogin means the
//! same here.
//!
//! - bool: `--f` or `--f=V` with V one of Go's `strconv.ParseBool` spellings;
//! - stringSlice (`--listen-address`, `--oidc-extra-scope`): each value is one CSV record;
//! - intSlice (`--listen-port`): each value split on commas, no quoting;
//! - stringArray (`--certificate-authority*`): taken whole, never split;
//! - stringToString (`--oidc-auth-request-extra-params`, `--oidc-request-header`): one pair,
//!   or with two or more `=` a CSV record of pairs; later keys replace earlier ones.

/// Go's `strconv.ParseBool`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (true, false, 1, 0, t, f)"
        )),
    }
}

/// One record of Go's `encoding/csv` reader with its defaults (comma separator, `"` quotes,
/// `""` for a quote inside quotes, no lazy quotes, leading space kept): what pflag's
/// stringSlice does with each value. An empty value is an empty list.
pub fn csv_record(value: &str) -> Result<Vec<String>, String> {
    // csv reads lines: "\r\n" counts as "\n", empty lines before the record are skipped, and
    // only the first record is read.
    let normalised = value.replace("\r\n", "\n");
    let text = normalised.trim_start_matches('\n');
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut field = String::new();
            let mut inner = quoted;
            loop {
                let Some(end) = inner.find('"') else {
                    return Err(format!("{value:?}: a quoted field has no closing quote"));
                };
                field.push_str(&inner[..end]);
                inner = &inner[end + 1..];
                if let Some(after) = inner.strip_prefix('"') {
                    field.push('"');
                    inner = after;
                } else if let Some(after) = inner.strip_prefix(',') {
                    fields.push(field);
                    rest = after;
                    break;
                } else if inner.is_empty() || inner.starts_with('\n') {
                    fields.push(field);
                    return Ok(fields);
                } else {
                    return Err(format!(
                        "{value:?}: extraneous or missing \" in a quoted field"
                    ));
                }
            }
        } else {
            let end = rest.find([',', '\n']).unwrap_or(rest.len());
            let field = &rest[..end];
            if field.contains('"') {
                return Err(format!(
                    "{value:?}: a bare \" in an unquoted field (quote the whole field)"
                ));
            }
            fields.push(field.to_string());
            match rest[end..].chars().next() {
                Some(',') => rest = &rest[end + 1..],
                _ => return Ok(fields),
            }
        }
    }
}

/// A stringSlice flag given `values` (one per occurrence): empty when never given, so the
/// caller keeps the default, as pflag replaces its default on the first occurrence.
pub fn string_slice(values: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for value in values {
        out.extend(csv_record(value)?);
    }
    Ok(out)
}

/// An intSlice flag given `values`: each split on commas (no CSV quoting in pflag's intSlice)
/// and read as Go's `strconv.Atoi` reads a number.
pub fn int_slice(values: &[String]) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for value in values {
        for item in value.split(',') {
            let digits = item.strip_prefix(['+', '-']).unwrap_or(item);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{item:?} is not a number"));
            }
            out.push(
                item.parse()
                    .map_err(|_| format!("{item:?} is out of range"))?,
            );
        }
    }
    Ok(out)
}

/// A stringToString flag given `values`: pairs in the order their keys first appeared, a
/// repeated key taking its last value (pflag fills a Go map). The error is the item that is
/// not KEY=VALUE, or what is wrong with its CSV.
pub fn string_to_string(values: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for value in values {
        let items = match value.matches('=').count() {
            0 => return Err(value.clone()),
            // One pair: taken whole (commas included), surrounding quotes trimmed.
            1 => vec![value.trim_matches('"').to_string()],
            _ => csv_record(value)?,
        };
        for item in items {
            let Some((key, val)) = item.split_once('=') else {
                return Err(item);
            };
            match out.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = val.to_string(),
                None => out.push((key.to_string(), val.to_string())),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn csv_as_go_reads_it() {
        assert_eq!(csv_record("a,b").unwrap(), ["a", "b"]);
        assert_eq!(csv_record(r#""a,b",c"#).unwrap(), ["a,b", "c"]);
        assert_eq!(
            csv_record(r#""say ""hi""",x"#).unwrap(),
            [r#"say "hi""#, "x"]
        );
        assert_eq!(csv_record("a,").unwrap(), ["a", ""]);
        assert_eq!(csv_record(" a , b").unwrap(), [" a ", " b"]);
        assert_eq!(csv_record("").unwrap(), Vec::<String>::new());
        assert_eq!(csv_record("a\nb,c").unwrap(), ["a"]);
        assert!(csv_record(r#"a"b"#).is_err());
        assert!(csv_record(r#""ab"c"#).is_err());
        assert!(csv_record(r#""ab"#).is_err());
    }

    #[test]
    fn string_to_string_splits_only_with_two_or_more_equals_signs() {
        assert_eq!(
            string_to_string(&strings(&["a=1,b=2"])).unwrap(),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        // One `=`: the value keeps its comma.
        assert_eq!(
            string_to_string(&strings(&["X-Tags=a,b"])).unwrap(),
            [("X-Tags".into(), "a,b".into())]
        );
        assert_eq!(
            string_to_string(&strings(&["a=1", "b=2", "a=3"])).unwrap(),
            [("a".into(), "3".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            string_to_string(&strings(&[r#""k=v""#])).unwrap(),
            [("k".into(), "v".into())]
        );
        assert!(string_to_string(&strings(&["novalue"])).is_err());
        assert!(string_to_string(&strings(&["a=1,b=2,c"])).is_err());
    }

    #[test]
    fn int_slices_split_on_commas_without_quotes() {
        assert_eq!(
            int_slice(&strings(&["8000,18000", "9000"])).unwrap(),
            [8000, 18000, 9000]
        );
        assert!(int_slice(&strings(&["80 00"])).is_err());
        assert!(int_slice(&strings(&[""])).is_err());
    }

    #[test]
    fn bools_as_strconv_parses_them() {
        for v in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(v), Ok(true));
        }
        for v in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(v), Ok(false));
        }
        assert!(parse_bool("yes").is_err());
    }
}
