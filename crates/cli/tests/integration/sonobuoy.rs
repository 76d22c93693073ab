//! `netmatrix sonobuoy plugin`: the definition on stdout, bad run flags refused with exit 2.

use std::process::{Command, Output};

fn netmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netmatrix")).args(args).output().expect("running netmatrix")
}

#[test]
fn the_plugin_definition_goes_to_stdout() {
    let out = netmatrix(&["sonobuoy", "plugin", "--suite", "netpol"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("plugin-name: netmatrix\n") && yaml.contains("  - \"--suite\"\n  - \"netpol\"\n"), "{yaml}");
}

#[test]
fn bad_run_flags_exit_2() {
    for (args, message) in [
        (&["sonobuoy", "plugin", "--nope"][..], "'--nope'"),
        (&["sonobuoy", "plugin", "--suite", "netpol", "--json", "r.json"][..], "the plugin writes every report"),
        (&["sonobuoy", "plugin", "--kubeconfig", "k"][..], "--kubeconfig"),
    ] {
        let out = netmatrix(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
