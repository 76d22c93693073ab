//! Is a binary fit for a FROM-scratch linux/amd64 image? The image has no libc and no loader, so
//! the binary must be x86-64 and static: no `PT_INTERP` program header (static-pie binaries, such
//! as the `crt-static` agent, have a dynamic section but no interpreter).

/// Why a binary cannot go into the image.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF executable")]
    NotElf,
    #[error("not an x86-64 (64-bit little-endian) executable, and the image is linux/amd64")]
    NotAmd64,
    #[error("its program headers run past the end of the file")]
    Truncated,
    #[error("dynamically linked (it asks for the loader {0}), and the image has no loader or libc")]
    Dynamic(String),
}

const PT_INTERP: u32 = 3;
const EM_X86_64: u16 = 62;
/// ET_EXEC, and ET_DYN for (static-)pie executables.
const EXECUTABLE_TYPES: [u16; 2] = [2, 3];
const PHDR_SIZE: usize = 56;

pub fn check_static(bytes: &[u8]) -> Result<(), ElfError> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if bytes.len() < 64 || !bytes.starts_with(b"\x7fELF") {
        return Err(ElfError::NotElf);
    }
    if bytes[4] != 2 || bytes[5] != 1 || u16_at(18) != EM_X86_64 {
        return Err(ElfError::NotAmd64);
    }
    if !EXECUTABLE_TYPES.contains(&u16_at(16)) {
        return Err(ElfError::NotElf);
    }
    let (phoff, phentsize, phnum) = (u64_at(32), usize::from(u16_at(54)), u64::from(u16_at(56)));
    if phentsize < PHDR_SIZE {
        return Err(ElfError::NotElf);
    }
    for i in 0..phnum {
        let header = usize::try_from(phoff + i * phentsize as u64).ok().and_then(|at| bytes.get(at..at.checked_add(PHDR_SIZE)?)).ok_or(ElfError::Truncated)?;
        if u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) == PT_INTERP {
            let (offset, size) =
                (u64::from_le_bytes(header[8..16].try_into().expect("8 bytes")), u64::from_le_bytes(header[32..40].try_into().expect("8 bytes")));
            let interpreter =
                usize::try_from(offset).ok().zip(usize::try_from(size).ok()).and_then(|(o, s)| bytes.get(o..o.checked_add(s)?)).unwrap_or_default();
            return Err(ElfError::Dynamic(String::from_utf8_lossy(interpreter).trim_end_matches('\0').to_owned()));
        }
    }
    Ok(())
}

/// Minimal ELF files for tests: a 64-byte header and program headers of the given types, the
/// interpreter path (for `PT_INTERP`) after them.
#[cfg(test)]
pub fn minimal(machine: u16, program_headers: &[u32]) -> Vec<u8> {
    let interpreter = b"/lib64/ld-linux-x86-64.so.2\0";
    let data_at = 64 + PHDR_SIZE * program_headers.len();
    let mut elf = vec![0u8; data_at];
    elf[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf[16..18].copy_from_slice(&3u16.to_le_bytes());
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[52..54].copy_from_slice(&64u16.to_le_bytes());
    elf[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    elf[56..58].copy_from_slice(&(program_headers.len() as u16).to_le_bytes());
    for (i, kind) in program_headers.iter().enumerate() {
        let at = 64 + PHDR_SIZE * i;
        elf[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        elf[at + 8..at + 16].copy_from_slice(&(data_at as u64).to_le_bytes());
        elf[at + 32..at + 40].copy_from_slice(&(interpreter.len() as u64).to_le_bytes());
    }
    elf.extend_from_slice(interpreter);
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;

    #[test]
    fn static_and_static_pie_pass() {
        assert_eq!(check_static(&minimal(EM_X86_64, &[PT_LOAD])), Ok(()));
        assert_eq!(check_static(&minimal(EM_X86_64, &[PT_LOAD, PT_DYNAMIC])), Ok(()));
    }

    #[test]
    fn an_interpreter_means_dynamic_and_is_named() {
        assert_eq!(check_static(&minimal(EM_X86_64, &[PT_LOAD, PT_INTERP])), Err(ElfError::Dynamic("/lib64/ld-linux-x86-64.so.2".into())));
    }

    #[test]
    fn other_files_are_refused() {
        assert_eq!(check_static(b"#!/bin/sh\necho hello\n"), Err(ElfError::NotElf));
        assert_eq!(check_static(&minimal(183, &[PT_LOAD])), Err(ElfError::NotAmd64), "aarch64");
        let mut truncated = minimal(EM_X86_64, &[PT_LOAD]);
        truncated.truncate(80);
        assert_eq!(check_static(&truncated), Err(ElfError::Truncated));
    }

    #[test]
    fn real_binaries() {
        // The test binary itself is dynamic unless built with crt-static.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let linked_statically = cfg!(target_feature = "crt-static");
        assert_eq!(check_static(&me).is_ok(), linked_statically, "{:?}", check_static(&me));
    }
}
