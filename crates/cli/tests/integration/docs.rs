//! Shell completions and the man page come from the flag definitions.

use crate::analyze::netmatrix;

#[test]
fn completions_and_man_page_know_every_command_and_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let out = netmatrix(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("kubeconfig") && script.contains("retry-interval") && script.contains("sonobuoy"), "{shell}: {script}");
        assert!(script.contains("report") && script.contains("history"), "{shell}: {script}");
    }
    let out = netmatrix(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH netmatrix 1") && page.contains("analyze") && page.contains("cleanup") && page.contains("report"), "{page}");
    assert_eq!(netmatrix(&["completions", "tcsh"]).status.code(), Some(2), "an unknown shell is a usage error");
}
