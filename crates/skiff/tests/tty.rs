//! Terminals: `run -it` on a real pty (util-linux `script` gives the test one), the window
//! size, detaching with ctrl-p ctrl-q and attaching again.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{skiff_bin, text, Store};

/// Runs `shell` under `script` (a pty as stdin/stdout); `input` is typed after `delay`.
fn on_pty(shell: &str, input: &[u8], delay: Duration) -> (Option<i32>, String) {
    typed(shell, &[(delay, input)])
}

/// As [`on_pty`], typing each chunk after its delay.
fn typed(shell: &str, chunks: &[(Duration, &[u8])]) -> (Option<i32>, String) {
    let mut c = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = c.stdin.take().unwrap();
    for (delay, input) in chunks {
        std::thread::sleep(*delay);
        stdin.write_all(input).unwrap();
        stdin.flush().unwrap();
    }
    // Keep stdin open until the command ends (an EOF would reach the container).
    let o = c.wait_with_output().unwrap();
    drop(stdin);
    (o.status.code(), text(&o.stdout))
}

#[test]
fn run_it_gives_a_terminal_with_the_callers_size() {
    let s = Store::new();
    let cmd = format!(
        "stty rows 33 cols 111; SKIFF_DEFAULT_NETWORK=none {} --root {} run -it --rm busybox sh -c 'tty; stty size; exit 4'",
        skiff_bin(),
        s.path().display()
    );
    let (code, out) = on_pty(&cmd, b"", Duration::ZERO);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 111"), "{out}");
}

#[test]
fn run_it_is_interactive() {
    let s = Store::new();
    let cmd = format!("SKIFF_DEFAULT_NETWORK=none {} --root {} run -it --rm busybox sh", skiff_bin(), s.path().display());
    let (code, out) = on_pty(&cmd, b"echo computed-$((40+2))\nexit 5\n", Duration::from_millis(300));
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("computed-42"), "{out}");
}

#[test]
fn detach_and_attach_again() {
    let s = Store::new();
    s.ok(&["run", "-dit", "--name", "term", "busybox", "sh"]);
    let attach = format!("{} --root {} attach term", skiff_bin(), s.path().display());
    // Type a command, then ctrl-p ctrl-q.
    let (code, out) = typed(
        &attach,
        &[
            (Duration::from_millis(300), b"echo attached-$((2+2))\n"),
            (Duration::from_millis(300), b"\x10\x11"),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("attached-4"), "{out}");
    // Still running, and what was typed ran in it.
    assert_eq!(s.inspect("term", "{{.State.Status}}"), "running");
    assert!(s.ok(&["logs", "term"]).contains("attached-4"));
    // Attach again and end it.
    let (code, out) = on_pty(&attach, b"exit 6\n", Duration::from_millis(300));
    assert_eq!(code, Some(6), "{out}");
    assert!(
        common::eventually(5, || s.inspect("term", "{{.State.Status}} {{.State.ExitCode}}") == "exited 6"),
        "{}",
        s.inspect("term", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}")
    );
}

#[test]
fn exec_it_gets_its_own_terminal() {
    let s = Store::new();
    s.ok(&["run", "-d", "--name", "host", "busybox", "sleep", "60"]);
    let cmd = format!("{} --root {} exec -it host sh -c 'tty; exit 3'", skiff_bin(), s.path().display());
    let (code, out) = on_pty(&cmd, b"", Duration::ZERO);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
}
