//! For tests: a real etcd and kube-apiserver (v1.37.2, built from their Go modules by
//! hack/kube/build) on free loopback ports, with token authentication and RBAC, killed when
//! dropped. Tests find the binaries through `NETMATRIX_KUBE_BIN` (.ci/run sets it) and skip,
//! saying why, without them; in CI (`CI` set) a missing piece fails the test instead.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin's bearer token; every token file a test gives must grant it `system:masters`.
pub const ADMIN_TOKEN: &str = "admintoken";

/// The directory of the control plane's binaries, when it has `binaries` and openssl and curl
/// work; else `None`, after printing why `what` is skipped (panicking in CI).
pub fn bin_dir(what: &str, binaries: &[&str]) -> Option<PathBuf> {
    let works = |program: &str, arg: &str| Command::new(program).arg(arg).output().is_ok_and(|o| o.status.success());
    let why = match std::env::var_os("NETMATRIX_KUBE_BIN").map(PathBuf::from) {
        Some(dir) if binaries.iter().all(|b| dir.join(b).exists()) => {
            if works("openssl", "version") && works("curl", "--version") {
                return Some(dir);
            }
            "openssl or curl is missing (Debian packages openssl, curl)".to_owned()
        }
        Some(dir) => format!("{} lacks one of {} (hack/kube/build builds them)", dir.display(), binaries.join(", ")),
        None => "NETMATRIX_KUBE_BIN is not set (hack/kube/build builds the control plane and prints the directory)".to_owned(),
    };
    assert!(std::env::var_os("CI").is_none(), "in CI the real API server tests must run: {why}");
    eprintln!("SKIPPED: {what}: {why}");
    None
}

/// etcd and kube-apiserver (and what a test adds with [`ControlPlane::spawn`]), killed in
/// reverse order when dropped; their files and logs live in `dir`.
pub struct ControlPlane {
    children: Vec<Child>,
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    /// The API server's HTTPS port on 127.0.0.1.
    pub port: u16,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver with the token file `tokens` (CSV lines `token,user,uid,"groups"`)
    /// and the apiserver flags `extra` returns (given the directory, where it may write the
    /// files they name), and waits (90 s at most) until `/readyz` says ok: only then are the
    /// RBAC bootstrap roles in place.
    pub fn start(bin: &Path, tokens: &str, extra: impl FnOnce(&Path) -> Vec<String>) -> ControlPlane {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let key = d.join("sa.key");
        let openssl = |args: &[&str]| assert!(Command::new("openssl").args(args).current_dir(&d).stderr(Stdio::null()).status().unwrap().success());
        openssl(&["genrsa", "-out", "sa.key", "2048"]);
        openssl(&["rsa", "-pubout", "-in", "sa.key", "-out", "sa.pub"]);
        std::fs::write(d.join("tokens.csv"), tokens).unwrap();
        let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
        let path = |p: &str| d.join(p).display().to_string();
        let mut plane = ControlPlane { children: Vec::new(), bin: bin.to_path_buf(), dir, port };
        plane.spawn(
            "etcd",
            &[
                format!("--data-dir={}", path("etcd")),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
            ],
        );
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", path("certs")),
            format!("--token-auth-file={}", path("tokens.csv")),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            format!("--service-account-key-file={}", path("sa.pub")),
            format!("--service-account-signing-key-file={}", key.display()),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
        ];
        args.extend(extra(&d));
        plane.spawn("kube-apiserver", &args);
        let started = Instant::now();
        while plane.curl(None, "GET", "/readyz", None).1.trim() != "ok" {
            assert!(started.elapsed() < Duration::from_secs(90), "kube-apiserver not ready within 90 s (logs in {})", plane.dir.path().display());
            std::thread::sleep(Duration::from_millis(200));
        }
        plane
    }

    /// A file in the control plane's directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Starts another of the binaries (stderr to `<name>.log`), stopped with the rest.
    pub fn spawn(&mut self, name: &str, args: &[String]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let child = Command::new(self.bin.join(name)).args(args).stdout(Stdio::null()).stderr(log).spawn();
        self.children.push(child.unwrap_or_else(|e| panic!("starting {name}: {e}")));
    }

    /// One request as the admin, with user agent `agent` (curl's own when `None`): (status, body).
    pub fn curl(&self, agent: Option<&str>, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut command = Command::new("curl");
        command.args(["-sk", "-X", method, "-H", &format!("Authorization: Bearer {ADMIN_TOKEN}"), "-w", "\n%{http_code}"]);
        if let Some(agent) = agent {
            command.args(["-A", agent]);
        }
        if let Some(body) = body {
            command.args(["-H", "Content-Type: application/json", "--data-binary", body]);
        }
        let out = command.arg(format!("https://127.0.0.1:{}{path}", self.port)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}
