//! Writing results to standard output or a file without panicking: a closed pipe (`| head`) ends
//! the command quietly, a full disk is a one-line failure (exit 1).

use std::io::{self, Write};
use std::path::Path;

use crate::CliError;

/// Write `text` to `file` (created or truncated) or, with `None`, to standard output.
pub fn emit(text: &str, file: Option<&Path>) -> Result<(), CliError> {
    match file {
        // Straight to the file (not through a rename: FILE may be a device such as /dev/full).
        Some(path) => std::fs::write(path, text.as_bytes())
            .map_err(|e| CliError::Run(anyhow::anyhow!("writing {}: {e}", path.display()))),
        None => print(text).map(|_| ()),
    }
}

/// Write `text` to standard output now (flushed), for a command that prints as it goes:
/// `Ok(true)` when written, `Ok(false)` when the reader has gone (a closed pipe), so that the
/// caller can stop quietly; any other failure (a full disk) is a one-line error.
pub fn print(text: &str) -> Result<bool, CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::Run(anyhow::anyhow!(
            "writing to standard output: {e}"
        ))),
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file. A failure names the path.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let result = (|| -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::Run(anyhow::anyhow!("writing {}: {e}", path.display()))
    })
}

/// A line on standard error; errors (a closed stderr) are ignored.
pub fn note(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}
