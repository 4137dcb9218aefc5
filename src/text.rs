//! Text for people to copy: a word quoted so that a POSIX shell reads it back unchanged. It sits
//! at the bottom of the layering, so that every command that prints a command line can use it.

use std::ffi::OsStr;

/// `word` as one shell word: as it is when every character is plain, otherwise in single quotes
/// (a quote inside becomes `'\''`). The empty word is `''`, so that it stays an argument.
pub fn shell_word(word: impl AsRef<OsStr>) -> String {
    let word = word.as_ref().to_string_lossy();
    // `=` is left out: zsh expands a word that starts with it. `~` and `%` likewise.
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn plain_words_stay_as_they_are() {
        assert_eq!(
            shell_word(Path::new("/etc/volvo-collect/collector.toml")),
            "/etc/volvo-collect/collector.toml"
        );
        assert_eq!(shell_word("a_b+c:d,e@f"), "a_b+c:d,e@f");
    }

    #[test]
    fn spaces_are_quoted() {
        assert_eq!(
            shell_word(Path::new("/home/me/my cars/c.toml")),
            "'/home/me/my cars/c.toml'"
        );
    }

    #[test]
    fn a_quote_inside_is_closed_escaped_and_reopened() {
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
        assert_eq!(shell_word("=ls"), "'=ls'");
    }

    #[test]
    fn the_empty_word_stays_an_argument() {
        assert_eq!(shell_word(""), "''");
    }
}
