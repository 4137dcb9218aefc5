//! Shell completions and the manual page come from the CLI definition itself, so they list
//! every command and flag there is.

const BIN: &str = env!("CARGO_BIN_EXE_volvo-collect");

fn run(args: &[&str]) -> String {
    let o = std::process::Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn completions_know_every_command_and_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for word in [
            "login",
            "check",
            "demo",
            "simulate",
            "--once",
            "--textfile",
            "--pushgateway",
            "--remote-write",
            "--listen",
        ] {
            // fish writes long options as `-l once`.
            let word = if shell == "fish" {
                word.trim_start_matches("--")
            } else {
                word
            };
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // bash can load it.
    let script = run(&["completions", "bash"]);
    let o = std::process::Command::new("bash")
        .args(["-n", "-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_manual_page_renders() {
    let page = run(&["man"]);
    assert!(page.contains(".TH volvo-collect 1"), "{page}");
    for word in ["\\-\\-once", "\\-\\-textfile", "login", "simulate"] {
        assert!(page.contains(word), "manual page lacks {word}");
    }
}

/// Guards contradictory modes: `--once --listen` ran once and ignored the listener without a
/// word; it is a usage error (exit 2) that names both flags.
#[test]
fn once_and_listen_together_are_a_usage_error() {
    let o = std::process::Command::new(BIN)
        .args(["--once", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("'--once' cannot be used with '--listen"),
        "{err}"
    );
}
