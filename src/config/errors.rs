//! One-line messages for errors in the file as written (toml's own errors): the file, line,
//! table and key, and what is allowed. A secret's value is never shown, whatever is wrong with
//! it, and other values are cut short and lose URL credentials, because these messages end up
//! in journals and bug reports.

use std::path::Path;

use crate::error::Fatal;

/// Keys whose values are secrets: an error about one never shows its value.
pub(super) const SECRET_KEYS: &[&str] = &["client_secret", "api_key", "password", "bearer_token"];

/// One line from a TOML error: file, line, the table and the key, and what is allowed. The
/// value is shown only for keys that are not secrets, and cut short; toml's own message, which
/// may quote the value, is used only where it names keys (unknown or missing fields).
pub(super) fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Fatal {
    let msg = without_userinfo(&e.message().replace('\n', " "));
    let Some(span) = e.span() else {
        return Fatal::config(format!("{}: {}", path.display(), shorten_quoted(&msg)));
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    if let Some(fatal) = unknown_table(path, text, start, line, &msg) {
        return fatal;
    }
    let table = text[..start].lines().rev().find_map(|l| {
        let l = l.trim();
        (l.starts_with('[') && l.ends_with(']')).then(|| l.to_string())
    });
    let place = match &table {
        Some(t) => format!("in {}", shorten(t)),
        None => "at the top level".to_string(),
    };
    let spanned = whole_token(text, span.clone()).trim();
    // The key the error is about: the spanned text itself for unknown and duplicate keys; none
    // for a missing one (the span is the table); otherwise the key written before the `=` that
    // precedes the spanned value, within the same table.
    let key_is_span = msg.starts_with("unknown field") || msg.starts_with("duplicate key");
    let since_table = match text[..start].rfind("\n[") {
        Some(i) => &text[i + 1..start],
        None => &text[..start],
    };
    let key = if key_is_span {
        Some(spanned.trim_matches('"').to_string())
    } else if msg.starts_with("missing field") {
        None
    } else {
        since_table.rsplit_once('=').map(|(before, _)| {
            before
                .trim_end()
                .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
    }
    .filter(|k| !k.is_empty());
    let last = key.as_deref().map(|k| k.rsplit('.').next().unwrap_or(k));
    let line_text = since_table.rsplit('\n').next().unwrap_or("");
    let secret = last.is_some_and(|k| SECRET_KEYS.contains(&k))
        || table.as_deref() == Some("[web.basic_auth_users]")
        || line_text.contains("basic_auth_users");
    let what = if let Some(kinds) = msg.strip_prefix("invalid type: ") {
        // "invalid type: integer `5`, expected a string": keep the kinds, never the value.
        let found = kinds.split([' ', ',']).next().unwrap_or("value");
        let expected = msg
            .split_once("expected ")
            .map(|(_, e)| e)
            .unwrap_or("another type");
        format!("found {found}, expected {}", shorten_quoted(expected))
    } else if msg.starts_with("invalid duration") {
        msg.clone()
    } else if secret && !key_is_span && msg.contains(['"', '`', '\'']) {
        "not a usable value".to_string()
    } else {
        shorten_quoted(&msg)
    };
    let shown_key = key.as_deref().map(shorten).unwrap_or_default();
    let value = if !secret && !key_is_span && key.is_some() && !spanned.is_empty() {
        format!(" = {}", shorten(spanned))
    } else {
        String::new()
    };
    let hint = if secret && msg.starts_with("invalid type") {
        "; a secret is a quoted string (or put it in the _file key or the environment)"
    } else {
        ""
    };
    if shown_key.is_empty() {
        Fatal::config(format!("{} line {line}: {place}: {what}", path.display()))
    } else {
        Fatal::config(format!(
            "{} line {line}: {place}, `{shown_key}`{value}: {what}{hint}",
            path.display()
        ))
    }
}

/// An unknown name in a table header (`[volvo2]`, `[[acount]]`, `[volvo.x]`) is a table the
/// file may not have: said so, with the table it would be in, rather than blamed on the table
/// above it.
fn unknown_table(path: &Path, text: &str, start: usize, line: usize, msg: &str) -> Option<Fatal> {
    let allowed = msg.strip_prefix("unknown field ")?;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let header = text[line_start..start].trim_start();
    if !header.starts_with('[') {
        return None;
    }
    let parent = header.trim_start_matches('[').trim_end_matches('.').trim();
    let place = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{}]", shorten(parent))
    };
    let allowed = allowed.split_once(", expected ").map_or("", |(_, a)| a);
    let name = shorten(whole_token(text, start..start).trim_matches('"'));
    Some(Fatal::config(format!(
        "{} line {line}: {place}: unknown table `{name}`; the tables are {}",
        path.display(),
        shorten_quoted(allowed).replace("one of ", "")
    )))
}

/// The text of a span, widened to the whole key or value it starts: toml points some errors
/// (a duplicate key, a number too large) at the first character only.
fn whole_token(text: &str, span: std::ops::Range<usize>) -> &str {
    let start = span.start.min(text.len());
    let Some(rest) = text.get(start..) else {
        return "";
    };
    let len = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map_or(rest.len(), |i| i + 2),
        _ => rest
            .find(|c: char| c.is_whitespace() || matches!(c, ',' | ']' | '}' | '#' | '='))
            .unwrap_or(rest.len()),
    };
    let end = (start + len).max(span.end).min(text.len());
    text.get(start..end).unwrap_or("")
}

/// `text` without the `user:password@` of any URL in it.
fn without_userinfo(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c == '"' || c == '`' || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` cut to 60 characters, on one line, without URL credentials.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    let one_line = without_userinfo(text).replace(['\n', '\r'], " ");
    let mut cut: String = one_line.chars().take(MAX).collect();
    if cut.len() < one_line.len() {
        cut.push('…');
    }
    cut
}

/// `msg` with every quoted or backticked part longer than 60 characters cut short.
fn shorten_quoted(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let quote = rest[i..].chars().next().expect("found");
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        match rest.find(quote) {
            Some(j) => {
                out.push_str(&shorten(&rest[..j]));
                out.push(quote);
                rest = &rest[j + 1..];
            }
            None => {
                out.push_str(&shorten(rest));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn parse_err(text: &str) -> String {
        parse(Path::new("/etc/vc/collector.toml"), text, &|_| None)
            .unwrap_err()
            .message
    }

    #[test]
    fn unknown_key_names_key_file_table_and_allowed_keys() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\nclient_sekret = \"x\"\n");
        assert!(e.starts_with("/etc/vc/collector.toml line 3: in [volvo], `client_sekret`: unknown field `client_sekret`, expected one of"), "{e}");
        assert!(e.contains("`client_secret`"), "{e}");
        assert!(!e.contains('\n'));
    }

    /// A misspelt table is named as a table of the level it is written at, never blamed on
    /// the table above it.
    #[test]
    fn unknown_table_is_rejected() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[outputs]\nstdout = true\n");
        assert_eq!(e, "/etc/vc/collector.toml line 3: at the top level: unknown table `outputs`; the tables are `volvo`, `account`, `sources`, `output`, `collect`, `location`, `pushgateway`, `remote_write`, `web`, `schedule`, `weather`, `prices`");
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[[acount]]\nname = \"a\"\n");
        assert!(
            e.contains("line 3: at the top level: unknown table `acount`"),
            "{e}"
        );
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[web.tls]\ncert = \"a\"\n");
        assert!(e.contains("line 3: in [web]: unknown table `tls`"), "{e}");
    }

    #[test]
    fn bad_duration_says_what_is_allowed() {
        let e =
            parse_err("[volvo]\nclient_id = \"abc\"\n[collect]\ninterval = \"5 minutes please\"\n");
        assert_eq!(e, "/etc/vc/collector.toml line 4: in [collect], `interval` = \"5 minutes please\": invalid duration: expected a duration like \"90s\", \"5m\" or \"1h\"");
    }

    /// Guards issue 12: an error about a secret key never shows its value, whatever the wrong
    /// type; it names the file, line, table and key, and what is allowed.
    #[test]
    fn errors_about_secret_keys_never_show_the_value() {
        let wrong = [
            "[\"SuperSecretValue42\"]",
            "4242424242",
            "{ SuperSecretValue42 = \"SuperSecretValue42\" }",
            "true",
            "4242.5",
        ];
        let places = [
            ("[volvo]\nclient_id = \"abc\"\n", "client_secret", "[volvo]"),
            ("[volvo]\nclient_id = \"abc\"\n", "api_key", "[volvo]"),
            (
                "[volvo]\nclient_id = \"abc\"\n[pushgateway]\n",
                "password",
                "[pushgateway]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[remote_write]\n",
                "password",
                "[remote_write]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[remote_write]\n",
                "bearer_token",
                "[remote_write]",
            ),
            (
                "[volvo]\nclient_id = \"abc\"\n[weather]\n",
                "api_key",
                "[weather]",
            ),
            (
                "[[account]]\nname = \"home\"\nclient_id = \"abc\"\n",
                "client_secret",
                "[[account]]",
            ),
        ];
        for (head, key, table) in places {
            for value in wrong {
                let text = format!("{head}{key} = {value}\n");
                let e = parse_err(&text);
                let line = head.matches('\n').count() + 1;
                assert!(
                    !e.contains("SuperSecret") && !e.contains("4242"),
                    "{text}\n→ {e}"
                );
                assert!(
                    e.starts_with(&format!(
                        "/etc/vc/collector.toml line {line}: in {table}, `{key}`: found "
                    )),
                    "{text}\n→ {e}"
                );
                assert!(e.contains("expected a string"), "{e}");
            }
        }
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[web]\nbasic_auth_users = { prom = [\"SuperSecret\"] }\n");
        assert!(!e.contains("SuperSecret") && e.contains("`prom`"), "{e}");
    }

    #[test]
    fn urls_in_errors_lose_their_credentials() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[output]\npushgateway = \"http://user:SuperSecretPw@host:port/\"\n");
        assert!(
            !e.contains("SuperSecretPw") && e.contains("output.pushgateway: not a usable URL"),
            "{e}"
        );
        assert_eq!(
            without_userinfo("a \"https://u:p@h/x\" b"),
            "a \"https://h/x\" b"
        );
    }

    #[test]
    fn huge_values_are_cut_short() {
        let big = "9".repeat(1_000_000);
        let e = parse_err(&format!(
            "[volvo]\nclient_id = \"abc\"\n[collect]\ninterval = \"{big}\"\n"
        ));
        assert!(e.len() < 300, "{} bytes: {}", e.len(), &e[..300]);
        assert!(e.contains("`interval`") && e.contains('…'), "{e}");
        let e = parse_err(&format!("[volvo]\nclient_id = \"abc\"\n{big} = 1\n"));
        assert!(e.len() < 600, "{} bytes", e.len());
    }

    /// Guards the naming of the key and value that toml points at by their first character:
    /// a duplicate key was named `` `c` `` for `client_id`, and a number too large for its
    /// type was shown as its first digit.
    #[test]
    fn duplicate_keys_and_huge_numbers_are_named_whole() {
        let e = parse_err("[volvo]\nclient_id = \"x\"\nclient_id = \"y\"\n");
        assert!(e.contains("`client_id`: duplicate key"), "{e}");
        let e = parse_err(
            "[volvo]\nclient_id = \"x\"\n[collect]\nrequests_per_minute = 99999999999999999999999\n",
        );
        assert!(
            e.contains("`requests_per_minute` = 99999999999999999999999:"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_is_rejected_with_line() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[sources]\nenergy = \"yes\"\n");
        assert!(e.contains("line 4: in [sources]"), "{e}");
        assert!(e.contains("expected a boolean"), "{e}");
    }
}
