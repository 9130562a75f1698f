//! WebDataset-style tar shards: members `key.ext` grouped into one sample per key.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};

use super::shards::{io_error, ShardIter, ShardReader};
use super::SourceError;

/// One sample of a tar shard: the members that share a key, by extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarSample {
    /// The key: the member's path up to the first `.` of its file name (`dir/000123` for
    /// `dir/000123.jpg`), WebDataset's `__key__`.
    pub key: String,
    /// The shard it came from (WebDataset's `__url__`).
    pub shard: String,
    /// Each member's bytes by extension (`jpg`, `cls`, `seg.png`, …).
    pub fields: BTreeMap<String, Vec<u8>>,
}

/// Reads tar shards as WebDataset does: consecutive regular-file members with the same key
/// form one [`TarSample`]; directories and other entries are passed over. Parsed by the
/// `tar` crate on a reader thread per open shard, a few samples ahead (4); samples stepped
/// over (before a resume point, or another rank's) are not read: their data is seeked past.
///
/// ```
/// use loader::source::{Shards, Source, TarReader};
/// let dir = std::env::temp_dir().join(format!("schedlab-doc-tar-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("shard-0.tar");
/// let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
/// for (name, data) in [("a.jpg", "A"), ("a.cls", "1"), ("b.jpg", "B"), ("b.cls", "2")] {
///     let mut h = tar::Header::new_gnu();
///     h.set_size(data.len() as u64);
///     h.set_mode(0o644);
///     h.set_cksum();
///     b.append_data(&mut h, name, data.as_bytes()).unwrap();
/// }
/// b.finish().unwrap();
/// drop(b);
/// let mut s = Shards::new(vec![path], TarReader);
/// s.start(0).unwrap();
/// let a = s.next().unwrap().unwrap();
/// assert_eq!((a.key.as_str(), a.fields["cls"].as_slice()), ("a", &b"1"[..]));
/// assert_eq!(s.next().unwrap().unwrap().fields["jpg"], b"B");
/// assert!(s.next().is_none());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TarReader;

/// The key and extension of a member path: the extension starts at the first `.` of the
/// file name.
fn split_key(path: &str) -> (&str, &str) {
    let name_at = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_at..].find('.') {
        Some(dot) => (&path[..name_at + dot], &path[name_at + dot + 1..]),
        None => (path, ""),
    }
}

type Msg = Result<Option<TarSample>, SourceError>;

/// A sample's members by extension.
type Fields = BTreeMap<String, Vec<u8>>;

impl ShardReader for TarReader {
    type Item = TarSample;

    fn name(&self) -> String {
        "tar".into()
    }

    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<TarSample>, SourceError> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let (tx, rx) = sync_channel::<Msg>(4);
        let shard = path.display().to_string();
        let every = every.max(1);
        std::thread::Builder::new()
            .name("schedlab-tar".into())
            .spawn(move || read_tar(file, &shard, from, every, offset, &tx))
            .map_err(|e| io_error(path, &e))?;
        Ok(Box::new(rx.into_iter()))
    }
}

/// Read a tar shard, sending each sample (or `None` for one stepped over) until the end, an
/// error, or the receiver is gone.
fn read_tar(file: File, shard: &str, from: u64, every: u64, offset: u64, tx: &SyncSender<Msg>) {
    // An unreadable archive ends the shard: the failure is the item at `index`, reported
    // by the rank that reads that sample (and not again when resuming after it).
    let fail = |index: u64, message: String| {
        if index >= from && index % every == offset {
            let _ = tx.send(Err(SourceError::Format {
                path: shard.to_string(),
                message,
            }));
        }
    };
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 16, file));
    let entries = match archive.entries_with_seek() {
        Ok(e) => e,
        Err(e) => return fail(0, e.to_string()),
    };
    // The sample being gathered: its index and key, and its fields if it is read.
    let mut index: u64 = 0;
    let mut cur: Option<(String, Option<Fields>)> = None;
    let wanted = |i: u64| i >= from && i % every == offset;
    let emit = |i: u64, key: String, fields: Option<Fields>| -> bool {
        if i < from {
            return true;
        }
        let msg = fields.map(|fields| TarSample {
            key,
            shard: shard.to_string(),
            fields,
        });
        tx.send(Ok(msg)).is_ok()
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return fail(index, format!("sample {index}: {e}")),
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = match entry.path() {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) => return fail(index, format!("sample {index}: {e}")),
        };
        let (key, ext) = split_key(&name);
        if cur.as_ref().is_some_and(|(k, _)| k != key) {
            let (k, fields) = cur.take().expect("checked");
            if !emit(index, k, fields) {
                return;
            }
            index += 1;
        }
        if cur.is_none() {
            cur = Some((key.to_string(), wanted(index).then(BTreeMap::new)));
        }
        if let Some((_, Some(fields))) = cur.as_mut() {
            let mut data = Vec::with_capacity(entry.size().min(1 << 26) as usize);
            if let Err(e) = entry.read_to_end(&mut data) {
                return fail(index, format!("sample {index} ({name}): {e}"));
            }
            fields.insert(ext.to_string(), data);
        }
    }
    if let Some((k, fields)) = cur.take() {
        emit(index, k, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn a_key_ends_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_key("a/b.c/000.seg.png"), ("a/b.c/000", "seg.png"));
        assert_eq!(split_key("x"), ("x", ""));
        assert_eq!(split_key("d/x.jpg"), ("d/x", "jpg"));
    }
}
