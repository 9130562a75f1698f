//! JSON-lines shards: one sample per non-blank line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::shards::{io_error, ShardIter, ShardReader, ShardSamples};
use super::SourceError;

/// Reads JSON-lines shards: each non-blank line is one sample, given as its text (parse it in
/// a stage, e.g. with `serde_json`); a blank line is not a sample. A line that is not UTF-8 is
/// that sample's failure and the shard goes on. Lines stepped over are scanned, not kept.
///
/// ```
/// use loader::source::{JsonLines, Shards, Source};
/// let path = std::env::temp_dir().join(format!("schedlab-doc-{}.jsonl", std::process::id()));
/// std::fs::write(&path, "{\"a\": 1}\n\n{\"a\": 2}\r\n").unwrap();
/// let mut s = Shards::new(vec![path.clone()], JsonLines);
/// s.start(0).unwrap();
/// let v: Vec<String> = std::iter::from_fn(|| s.next()).map(|r| r.unwrap()).collect();
/// assert_eq!(v, ["{\"a\": 1}", "{\"a\": 2}"]);
/// std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLines;

struct Lines {
    path: PathBuf,
    file: BufReader<File>,
    buf: Vec<u8>,
    index: u64,
    from: u64,
    every: u64,
    offset: u64,
    line: u64,
    done: bool,
}

impl Iterator for Lines {
    type Item = Result<Option<String>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            self.buf.clear();
            match self.file.read_until(b'\n', &mut self.buf) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    self.line += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let i = self.index;
                    self.index += 1;
                    if i < self.from {
                        continue;
                    }
                    if i % self.every != self.offset {
                        return Some(Ok(None));
                    }
                    while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        self.buf.pop();
                    }
                    return Some(match std::str::from_utf8(&self.buf) {
                        Ok(s) => Ok(Some(s.to_string())),
                        // A bad line fails alone: the shard goes on after it.
                        Err(e) => Err(SourceError::Format {
                            path: self.path.display().to_string(),
                            message: format!("line {}: {e}", self.line),
                        }),
                    });
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(io_error(&self.path, &e)));
                }
            }
        }
        None
    }
}

impl ShardSamples<String> for Lines {}

impl ShardReader for JsonLines {
    type Item = String;

    fn name(&self) -> String {
        "jsonl".into()
    }

    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<String>, SourceError> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        Ok(Box::new(Lines {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 16, file),
            buf: Vec::new(),
            index: 0,
            from,
            every: every.max(1),
            offset,
            line: 0,
            done: false,
        }))
    }
}
