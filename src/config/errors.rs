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
    let msg = without_credentials(&e.message().replace('\n', " "));
    let Some(span) = e.span() else {
        return Fatal::config(format!("{}: {}", path.display(), shorten_quoted(&msg)));
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    if let Some(fatal) = header_error(path, text, start, line, &msg) {
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
    let since_table = match text[..start].rfind("\n[") {
        Some(i) => &text[i + 1..start],
        None => &text[..start],
    };
    let (key, key_is_span) = error_key(text, start, spanned, since_table, &msg);
    let last = key.as_deref().map(|k| k.rsplit('.').next().unwrap_or(k));
    let line_text = since_table.rsplit('\n').next().unwrap_or("");
    let secret = last.is_some_and(|k| SECRET_KEYS.contains(&k))
        || table.as_deref() == Some("[web.basic_auth_users]")
        || line_text.contains("basic_auth_users");
    let what = if msg.starts_with("invalid type: ") {
        describe(&msg)
    } else if msg.starts_with("invalid duration") {
        msg.clone()
    } else if secret && !key_is_span && msg.contains(['"', '`', '\'']) {
        "not a usable value".to_string()
    } else {
        shorten_quoted(&msg)
    };
    let shown_key = key.as_deref().map(shorten).unwrap_or_default();
    // Only a plain value is shown: an inline table or an array may hold a secret's key.
    let plain =
        !spanned.is_empty() && !spanned.starts_with(['{', '[']) && !read_entries(since_table).1;
    let value = if !secret && !key_is_span && key.is_some() && plain {
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

/// The key an error is about, and whether the error spans the key itself (then no value is
/// shown): the spanned text for unknown and duplicate keys and for a key written dotted
/// (`client_secret.x = 1`, its first part); none for a missing one (the span is the table);
/// otherwise the key written before the `=` that precedes the spanned value, in its table.
fn error_key(
    text: &str,
    start: usize,
    spanned: &str,
    since_table: &str,
    msg: &str,
) -> (Option<String>, bool) {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let at_key = text[line_start..start].trim().is_empty()
        && text[start..]
            .lines()
            .next()
            .is_some_and(|l| l.contains('='))
        && spanned
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c));
    let named = msg.starts_with("unknown field") || msg.starts_with("duplicate key");
    let key = if named || at_key {
        let written = spanned.trim_matches('"');
        let key = if at_key && !msg.starts_with("unknown field") {
            written.split('.').next().unwrap_or(written)
        } else {
            written
        };
        Some(key.to_string())
    } else if msg.starts_with("missing field") {
        None
    } else {
        read_entries(since_table).0
    };
    (key.filter(|k| !k.is_empty()), named || at_key)
}

/// The key of the last entry that starts in `text` (a table's text up to an error), read the
/// way TOML reads it: an `=`, a `#` or a line inside a string (a secret's base64 padding, a
/// comment after it) is never taken for a key. Keys in inline tables count; a key on the last
/// line without its `=` yet is the entry the error cut short. Also whether `text` ends inside
/// an array or inline table.
fn read_entries(text: &str) -> (Option<String>, bool) {
    let b = text.as_bytes();
    let (mut i, mut last) = (0, None);
    // The open arrays and inline tables, and whether a key may start here.
    let (mut open, mut entry) = (Vec::new(), true);
    while i < b.len() {
        let c = b[i];
        if entry && !matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'#') {
            entry = false;
            if c == b'[' && open.is_empty() {
                // A table header: its line holds no entry.
                i = line_end(b, i);
                continue;
            }
            if let Some((key, end, assigned)) = read_key(b, i) {
                if assigned || end == b.len() {
                    last = Some(key);
                }
                i = end;
                continue;
            }
        }
        match c {
            b'#' => i = line_end(b, i),
            b'"' | b'\'' => i = string_end(b, i),
            b'\n' => {
                entry |= open.is_empty();
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            _ => {
                match c {
                    b'[' | b'{' => open.push(c),
                    b']' | b'}' => drop(open.pop()),
                    _ => {}
                }
                entry = matches!(c, b'{' | b',') && open.last() == Some(&b'{');
                i += 1;
            }
        }
    }
    (last, !open.is_empty())
}

/// A key at `i` (bare or quoted parts joined by dots, quotes dropped): the key, where it ends
/// (after its `=` when one follows), and whether one does. `None` where no key is written.
fn read_key(b: &[u8], mut i: usize) -> Option<(String, usize, bool)> {
    let mut parts = Vec::new();
    loop {
        let start = i;
        let part = match b.get(i) {
            Some(q @ (b'"' | b'\'')) => {
                let close = b[i + 1..].iter().position(|c| c == q || *c == b'\n')?;
                i += close + 2;
                String::from_utf8_lossy(&b[start + 1..i - 1])
            }
            _ => {
                while b
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
                {
                    i += 1;
                }
                String::from_utf8_lossy(&b[start..i])
            }
        };
        if i == start {
            return None;
        }
        parts.push(part.into_owned());
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match b.get(i) {
            Some(b'.') => i += 1,
            Some(b'=') => return Some((parts.join("."), i + 1, true)),
            None => return Some((parts.join("."), i, false)),
            Some(_) => return None,
        }
        while matches!(b.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
    }
}

/// Where the line holding `i` ends (its line feed, or the end).
fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |n| i + n)
}

/// Just past the string that opens at `i`: basic or literal, on one line or three-quoted
/// over several; an unterminated one-line string ends with its line, as TOML ends it.
fn string_end(b: &[u8], i: usize) -> usize {
    let q = b[i];
    if b[i..].starts_with(&[q, q, q]) {
        let mut j = i + 3;
        while j < b.len() {
            if q == b'"' && b[j] == b'\\' {
                j += 2;
            } else if b[j..].starts_with(&[q, q, q]) {
                return j + 3;
            } else {
                j += 1;
            }
        }
        return b.len();
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'\n' {
        if q == b'"' && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            return j + 1;
        } else {
            j += 1;
        }
    }
    j.min(b.len())
}

/// An error in a table header (`[volvo2]`, `[[acount]]`, `[volvo.extra]`, a key written as
/// `[output.pushgateway]`): named by the table it is in and its own name, rather than blamed
/// on the key above it.
fn header_error(path: &Path, text: &str, start: usize, line: usize, msg: &str) -> Option<Fatal> {
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let header = text[line_start..line_end].trim();
    if !header.starts_with('[') {
        return None;
    }
    let inner = header.trim_start_matches('[');
    let inner = inner.split(']').next().unwrap_or(inner).trim();
    let (parent, name) = inner.rsplit_once('.').unwrap_or(("", inner));
    let name = shorten(name.trim().trim_matches('"'));
    let place = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{}]", shorten(parent.trim()))
    };
    let what = match msg.strip_prefix("unknown field ") {
        Some(rest) => {
            let allowed = shorten_quoted(rest.split_once(", expected ").map_or("", |(_, a)| a))
                .replace("one of ", "");
            if parent.is_empty() {
                format!("unknown table `{name}`; the tables are {allowed}")
            } else {
                format!(
                    "`{name}` is not a key of [{}]; its keys are {allowed}",
                    shorten(parent)
                )
            }
        }
        None => format!("`{name}`: {}", describe(msg)),
    };
    Some(Fatal::config(format!(
        "{} line {line}: {place}: {what}",
        path.display()
    )))
}

/// toml's message without the value it may quote: a wrong type keeps only the kinds.
fn describe(msg: &str) -> String {
    match msg.strip_prefix("invalid type: ") {
        // "invalid type: integer `5`, expected a string": keep the kinds, never the value.
        Some(kinds) => {
            let found = kinds.split([' ', ',']).next().unwrap_or("value");
            let expected = msg
                .split_once("expected ")
                .map(|(_, e)| e)
                .unwrap_or("another type");
            format!("found {found}, expected {}", shorten_quoted(expected))
        }
        None => shorten_quoted(msg),
    }
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

/// `text` without the `user:password@` and the query of any URL in it, where credentials and
/// tokens are written. A password as written may hold any character (a space, a slash, a
/// quote), so everything from `://` to the last `@` after it goes, and a query goes up to the
/// next space or quote: this may cut more than the credentials, never less.
fn without_credentials(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        if let Some(at) = rest.rfind('@') {
            rest = &rest[at + 1..];
        }
        let url_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`'))
            .unwrap_or(rest.len());
        if let Some(q) = rest[..url_end].find(['?', '#']) {
            out.push_str(&rest[..q]);
            rest = &rest[url_end..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` cut to 60 characters, on one line, without URL credentials.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    let one_line = without_credentials(text).replace(['\n', '\r'], " ");
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
        assert!(
            e.contains("line 3: in [web]: `tls` is not a key of [web]; its keys are `listen`"),
            "{e}"
        );
    }

    /// A key written as a table, or dotted, is named as written, never as the key above it.
    #[test]
    fn a_key_written_as_a_table_or_dotted_is_named() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\ntoken_url = \"http://h/\"\n[output.pushgateway]\nx = 1\n");
        assert!(
            e.contains("line 4: in [output]: `pushgateway`: found map, expected a string"),
            "{e}"
        );
        let e = parse_err("[volvo]\nclient_id = \"abc\"\nclient_secret.x = \"SuperSecret\"\n");
        assert!(e.contains("in [volvo], `client_secret`: found map"), "{e}");
        assert!(!e.contains("SuperSecret"), "{e}");
        let e = parse_err("account.x = 1\n[volvo]\nclient_id = \"abc\"\n");
        assert!(e.contains("at the top level, `account`: found map"), "{e}");
    }

    #[test]
    fn bad_duration_says_what_is_allowed() {
        let e =
            parse_err("[volvo]\nclient_id = \"abc\"\n[collect]\ninterval = \"5 minutes please\"\n");
        assert_eq!(e, "/etc/vc/collector.toml line 4: in [collect], `interval` = \"5 minutes please\": invalid duration: expected a duration like \"90s\", \"5m\" or \"1h\"");
    }

    /// Guards the secrets in configuration errors: an error about a secret key never shows its value, whatever the wrong
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

    /// Guards the key an error names: it was the text before the last `=` ahead of the error,
    /// which in a secret with base64 padding (or an `=` in a comment after it) is the secret.
    #[test]
    fn syntax_errors_name_the_entry_never_a_secret() {
        let cases = [
            (
                "[remote_write]\nbearer_token = \"glc_SEKRITeyJvIj0iMTIzNDUifQ==\n",
                "`bearer_token`",
            ),
            (
                "[volvo]\nclient_secret = \"SEKRITc2VjcmV0NA==\"\ntoken_file \"token.json\"\n",
                "`token_file`",
            ),
            (
                "[volvo]\napi_key = \"SEKRITa2V5==\" ; the api key\n",
                "`api_key`",
            ),
            (
                "[pushgateway]\npassword = \"SEKRIT=pw\" // password\n",
                "`password`",
            ),
            (
                "[volvo]\nclient_secret = \"\"\"SEKRIT=cs\n",
                "`client_secret`",
            ),
            (
                "[volvo]\nclient_id = \"x\" # a = b\nclient_secret = '''SEKRIT=cs\n",
                "`client_secret`",
            ),
            (
                "[volvo]\n'client_secret' = [\"SEKRIT-cs-1234\"]\n",
                "`client_secret`",
            ),
            (
                "account = { name = \"home\", client_id = \"x\", client_secret = \"SEKRIT-cs\" }\n",
                "`account`",
            ),
            (
                "volvo = [{ client_id = \"x\", client_secret = \"SEKRIT-cs\" }]\n",
                "`volvo`",
            ),
            (
                "[[account]]\nname = \"a\"\nclient_id = 5\nclient_secret = \"SEKRIT=x\"\n",
                "`client_id`",
            ),
            (
                "[output]\npushgateway = [\"https://h/push?token=SEKRIT-q\"]\n",
                "`pushgateway`",
            ),
            ("[volvo]\nscopes = [SEKRITword]\n", "`scopes`"),
            ("[volvo]\nvins = [\"SEKRIT-vin\", 5]\n", "`vins`"),
        ];
        for (text, key) in cases {
            let e = parse_err(text);
            assert!(!e.contains("SEKRIT"), "{text}\n→ {e}");
            assert!(e.contains(key), "{text}\n→ {e}");
        }
    }

    #[test]
    fn urls_in_errors_lose_their_credentials() {
        let e = parse_err("[volvo]\nclient_id = \"abc\"\n[output]\npushgateway = \"http://user:SuperSecretPw@host:port/\"\n");
        assert!(
            !e.contains("SuperSecretPw") && e.contains("output.pushgateway: not a usable URL"),
            "{e}"
        );
        assert_eq!(
            without_credentials("a \"https://u:p@h/x\" b"),
            "a \"https://h/x\" b"
        );
        assert_eq!(
            without_credentials("`https://h/push?token=SEKRIT#f` and http://g/?a=b"),
            "`https://h/push` and http://g/"
        );
        // A password as written may hold a space, a slash or a quote; a wrong type shows the
        // value, never the password.
        for pw in ["SEK RET19", "SEK/RET24", "SEKRET22\\\""] {
            let text = format!(
                "[volvo]\nclient_id = \"abc\"\n[output]\npushgateway = [\"http://u:{pw}@h/\"]\n"
            );
            let e = parse_err(&text);
            assert!(!e.contains("SEK") && e.contains("found sequence"), "{e}");
        }
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
