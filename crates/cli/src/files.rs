//! Finding and reading manifest files; the model parses what is read.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use netmatrix_model::{Cluster, InputError, InputErrors, Validation};

/// The manifests under some paths, read, and what went wrong reading them.
#[derive(Default)]
pub struct Manifests {
    /// (file name, text), in the order found.
    pub files: Vec<(String, String)>,
    pub errors: Vec<InputError>,
    /// Files skipped, each naming the file.
    pub warnings: Vec<String>,
    /// (device, inode) of every file and directory met: each is read once, and symlink cycles end.
    seen: HashSet<(u64, u64)>,
}

/// Reads every file in `paths`: files named explicitly whatever their extension and type (a
/// pipe from `<(kubectl get ...)` included), directories searched recursively, following
/// symlinks, for `.yaml`, `.yml` and `.json` files.
pub fn read(paths: &[PathBuf]) -> Manifests {
    let mut manifests = Manifests::default();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => manifests.walk(path, &meta),
            Ok(meta) => manifests.read_file(path, &meta),
            Err(e) => manifests.error(path, format!("cannot read: {e}")),
        }
    }
    manifests
}

impl Manifests {
    /// The cluster the files describe; reading and parsing errors are reported together.
    pub fn parse(self, validation: Validation) -> Result<Cluster, InputErrors> {
        match (netmatrix_model::parse_files_with(&self.files, validation), self.errors) {
            (Ok(cluster), errors) if errors.is_empty() => Ok(cluster),
            (Ok(_), errors) => Err(InputErrors(errors)),
            (Err(InputErrors(parsing)), mut errors) => {
                errors.extend(parsing);
                Err(InputErrors(errors))
            }
        }
    }

    fn first_visit(&mut self, meta: &Metadata) -> bool {
        self.seen.insert((meta.dev(), meta.ino()))
    }

    fn walk(&mut self, dir: &Path, meta: &Metadata) {
        if !self.first_visit(meta) {
            return;
        }
        let mut entries: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return self.error(dir, format!("cannot list directory: {e}")),
        };
        // Sorted so that results and messages do not depend on directory order.
        entries.sort();
        for entry in entries {
            let manifest = entry.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
            match fs::metadata(&entry) {
                Ok(meta) if meta.is_dir() => self.walk(&entry, &meta),
                Ok(meta) if manifest && meta.is_file() => self.read_file(&entry, &meta),
                // Opening a FIFO would wait for a writer forever; a device or socket holds no manifest.
                Ok(_) if manifest => self.warnings.push(format!("{}: not a regular file, skipped", entry.display())),
                Err(e) if manifest => self.error(&entry, format!("cannot read: {e}")),
                _ => {}
            }
        }
    }

    fn read_file(&mut self, file: &Path, meta: &Metadata) {
        if !self.first_visit(meta) {
            return;
        }
        match fs::read_to_string(file) {
            Ok(text) => self.files.push((file.display().to_string(), text)),
            Err(e) => self.error(file, format!("cannot read: {e}")),
        }
    }

    fn error(&mut self, file: &Path, message: String) {
        self.errors.push(InputError { file: file.display().to_string(), document: None, object: None, field: None, message });
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: NAME}\n";

    /// `read` on another thread: a walk that never ends fails the test instead of hanging it.
    fn read_within(paths: Vec<PathBuf>) -> Manifests {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(read(&paths)));
        rx.recv_timeout(Duration::from_secs(20)).expect("reading the manifests did not finish")
    }

    fn names(manifests: &Manifests, root: &Path) -> Vec<String> {
        manifests.files.iter().map(|(name, _)| Path::new(name).strip_prefix(root).unwrap().display().to_string()).collect()
    }

    #[test]
    fn directories_are_searched_recursively_for_manifest_extensions() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("a.yaml"), POD.replace("NAME", "a")).unwrap();
        fs::write(dir.path().join("sub/b.yml"), POD.replace("NAME", "b")).unwrap();
        fs::write(dir.path().join("sub/c.json"), r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"c"}}"#).unwrap();
        fs::write(dir.path().join("notes.txt"), "kind: Pod\n").unwrap();
        let cluster = read(&[dir.path().to_owned()]).parse(Validation::Strict).unwrap();
        let pods: Vec<&str> = cluster.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["a", "b", "c"]);
        let missing = read(&[dir.path().join("nope")]).parse(Validation::Strict).unwrap_err();
        assert!(missing.to_string().contains("nope: cannot read"), "{missing}");
    }

    #[test]
    fn symlink_cycles_end_and_each_file_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let l = dir.path().join("L");
        fs::create_dir_all(l.join("sub")).unwrap();
        symlink("..", l.join("sub/up")).unwrap();
        symlink("../L", l.join("self")).unwrap();
        fs::write(l.join("a.yaml"), POD.replace("NAME", "a")).unwrap();
        fs::write(l.join("sub/b.yaml"), POD.replace("NAME", "b")).unwrap();
        // A second name for a file is no second file.
        symlink("a.yaml", l.join("z.yaml")).unwrap();
        let manifests = read_within(vec![l.clone()]);
        assert_eq!(names(&manifests, &l), ["a.yaml", "sub/b.yaml"]);
        assert!(manifests.errors.is_empty() && manifests.warnings.is_empty());
        // Named twice, directly and through its directory: still once.
        let manifests = read_within(vec![l.join("a.yaml"), l.clone()]);
        assert_eq!(names(&manifests, &l), ["a.yaml", "sub/b.yaml"]);
    }

    #[test]
    fn a_fifo_in_a_directory_is_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        fs::write(dir.path().join("pod.yaml"), POD.replace("NAME", "p")).unwrap();
        let manifests = read_within(vec![dir.path().to_owned()]);
        assert_eq!(names(&manifests, dir.path()), ["pod.yaml"]);
        assert_eq!(manifests.warnings, [format!("{}: not a regular file, skipped", fifo.display())]);
        assert!(manifests.errors.is_empty());
    }

    #[test]
    fn reading_and_parsing_errors_are_reported_together_naming_their_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("bad.yaml"), "a: [\n").unwrap();
        // A dangling symlink with a manifest's name is a file that cannot be read.
        symlink("gone", dir.path().join("dangling.yaml")).unwrap();
        let errors: Vec<String> = read(&[dir.path().to_owned()]).parse(Validation::Strict).unwrap_err().0.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("dangling.yaml: cannot read"), "{errors:?}");
        assert!(errors[1].contains("bad.yaml: not valid YAML"), "{errors:?}");
    }
}
