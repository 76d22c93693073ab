//! `netmatrix image build`: reads and checks the binaries, names the image, writes the archive
//! (the work is in netmatrix-image).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use netmatrix_image::{Image, ImageError, Reference, elf, images};

use crate::Outcome;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write an OCI image archive of the static agent (or of the Sonobuoy plugin), without Docker
    /// or a registry.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Output file [default: netmatrix-agent-VERSION.tar, or netmatrix-sonobuoy-VERSION.tar, here].
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The Sonobuoy plugin image: /netmatrix (the entrypoint) and /netmatrix-agent, both static.
    #[arg(long)]
    pub sonobuoy: bool,
    /// The static agent binary [default: netmatrix-agent next to this netmatrix].
    #[arg(long, value_name = "PATH")]
    pub agent: Option<PathBuf>,
    /// The static netmatrix binary of the Sonobuoy image [default: this netmatrix].
    #[arg(long, value_name = "PATH", requires = "sonobuoy")]
    pub netmatrix: Option<PathBuf>,
    /// Image name [default: netmatrix-agent:VERSION, which containerd and the kubelet read as
    /// docker.io/library/netmatrix-agent:VERSION; netmatrix-sonobuoy:VERSION with --sonobuoy].
    #[arg(long, value_name = "REF")]
    pub name: Option<String>,
}

pub fn run(command: ImageCommand) -> Outcome {
    let ImageCommand::Build(args) = command;
    let (image, output) = match plan(&args) {
        Ok(planned) => planned,
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::BadInput;
        }
    };
    let digest = match write(&image, &output) {
        Ok(digest) => digest,
        Err(e) => {
            eprintln!("error: writing {}: {e}", output.display());
            return Outcome::Failure;
        }
    };
    let (file, name) = (output.display(), image.reference.familiar());
    let registry_copy = match image.reference.domain() {
        "docker.io" => format!("docker://REGISTRY/{name}"),
        _ => format!("docker://{}", image.reference),
    };
    println!("image {} (manifest {digest})", image.reference);
    println!("wrote {file}");
    println!("load it with one of:");
    println!("  kind load image-archive {file} [--name CLUSTER]");
    println!("  ctr -n k8s.io images import {file}   # on each node");
    println!("  skopeo copy oci-archive:{file} {registry_copy}");
    println!("and use image: {name} with imagePullPolicy: IfNotPresent (or Never)");
    Outcome::Ok
}

/// Everything checked before the output is touched: binaries present, x86-64 and static, a valid name.
fn plan(args: &BuildArgs) -> Result<(Image, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot tell where this netmatrix is ({e}): pass --agent PATH"))?;
    let agent_path = args.agent.clone().unwrap_or_else(|| exe.with_file_name("netmatrix-agent"));
    let build_agent = "build the static agent with crates/agent/build-static.sh (it prints the binary's path) and pass --agent PATH";
    let agent = read_static(&agent_path, build_agent)?;
    let name = args.name.clone().unwrap_or_else(|| images::default_name(args.sonobuoy, VERSION));
    let reference = Reference::parse(&name).map_err(|e| format!("--name: {e}"))?;
    let image = if args.sonobuoy {
        let build_netmatrix = "the Sonobuoy image needs a static netmatrix too: build it with \
            RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p netmatrix-cli, \
            and run that binary or pass it as --netmatrix PATH";
        let netmatrix = read_static(args.netmatrix.as_deref().unwrap_or(&exe), build_netmatrix)?;
        images::sonobuoy(reference, VERSION, netmatrix, agent)
    } else {
        images::agent(reference, VERSION, agent)
    };
    let kind = if args.sonobuoy { "sonobuoy" } else { "agent" };
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("netmatrix-{kind}-{VERSION}.tar")));
    Ok((image, output))
}

fn read_static(path: &Path, how_to_build: &str) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}; {how_to_build}", path.display()))?;
    elf::check_static(&bytes).map_err(|e| format!("{}: {e}; {how_to_build}", path.display()))?;
    Ok(bytes)
}

/// Writes the archive. A file this call created is removed on failure, so no partial archive is
/// left; anything that was already there (an old archive, `/dev/stdout`) is left alone.
fn write(image: &Image, output: &Path) -> Result<String, String> {
    let created = !output.exists();
    let file = fs::File::create(output).map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(file);
    let written = netmatrix_image::write_archive(image, &mut out).map_err(|e| match e {
        ImageError::Write(cause) => cause.to_string(),
        other => other.to_string(),
    });
    let written = written.and_then(|digest| out.flush().map(|()| digest).map_err(|e| e.to_string()));
    if written.is_err() && created {
        let _ = fs::remove_file(output);
    }
    written
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn parse(args: &[&str]) -> Result<BuildArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "image", "build"].iter().chain(args))?;
        let Command::Image(ImageCommand::Build(build)) = cli.command else { panic!("image build") };
        Ok(build)
    }

    #[test]
    fn build_flags() {
        let plain = parse(&[]).unwrap();
        assert!(plain.output.is_none() && !plain.sonobuoy && plain.agent.is_none() && plain.name.is_none());
        let all = parse(&["-o", "x.tar", "--sonobuoy", "--agent", "a", "--netmatrix", "n", "--name", "reg.io/nm:1"]).unwrap();
        assert_eq!(all.output, Some(PathBuf::from("x.tar")));
        assert_eq!((all.agent, all.netmatrix), (Some("a".into()), Some("n".into())));
        assert!(all.sonobuoy);
        assert_eq!(all.name.as_deref(), Some("reg.io/nm:1"));
    }

    #[test]
    fn netmatrix_binary_only_for_the_sonobuoy_image() {
        assert!(parse(&["--netmatrix", "n"]).is_err());
    }
}
