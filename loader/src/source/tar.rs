//! WebDataset-style tar shards: members `key.ext` grouped into one sample per key.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::shards::{io_error, ShardIter, ShardReader, ShardSamples};
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
/// form one [`TarSample`]; directories and other entries are passed over. ustar, GNU (long
/// names, base-256 sizes) and pax (`path`, `size`) headers are understood.
///
/// The shard is parsed on the thread that pulls the source (no reader thread, no channel):
/// a header is read through a 64 KiB buffer, a member's bytes straight into the sample's
/// `Vec` (one copy from the file, no zeroing). Samples stepped over (before a resume point,
/// or another rank's) and samples passed over ([`ShardSamples::skip_sample`], as a shuffle
/// buffer's restore does for the positions it does not keep) are not read: their data is
/// seeked past.
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

/// A sample's members by extension.
type Fields = BTreeMap<String, Vec<u8>>;

/// The largest metadata member (a GNU long name, a pax header) read.
const META_MAX: u64 = 1 << 20;

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
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        Ok(Box::new(TarIter {
            file,
            len,
            ahead: Ahead::Unknown,
            scratch: Vec::new(),
            shard: path.display().to_string(),
            from,
            every: every.max(1),
            offset,
            index: 0,
            pending: None,
            done: false,
        }))
    }
}

/// What is known of the header after the data read last.
enum Ahead {
    /// Not read: the file stands at it.
    Unknown,
    /// Read (the file stands after it).
    Header(Box<[u8; 512]>),
    /// The file ends there.
    End,
    /// The file ends inside it.
    Cut,
}

/// Members up to this size are read through the scratch buffer (and copied out); larger
/// ones straight into their own `Vec`.
const SMALL: u64 = 4096;

/// Read from `file` into the spare capacity of `v` until it is full or the file ends.
#[cfg(unix)]
fn read_spare(file: &mut File, v: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    while v.len() < v.capacity() {
        let spare = v.spare_capacity_mut();
        // SAFETY: `read` writes at most `spare.len()` bytes at `spare`'s start, memory that
        // `v` owns and nothing else borrows; it is given as a raw pointer (no reference to
        // uninitialized bytes is made).
        let n = unsafe { libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        // SAFETY: the `n` bytes after the length were written by `read` just above, and
        // `n ≤ spare.len()`, so the new length is within the capacity.
        unsafe { v.set_len(v.len() + n as usize) };
    }
    Ok(())
}

/// Read from `file` into the spare capacity of `v` until it is full or the file ends.
#[cfg(not(unix))]
fn read_spare(file: &mut File, v: &mut Vec<u8>) -> std::io::Result<()> {
    let want = (v.capacity() - v.len()) as u64;
    file.take(want).read_to_end(v).map(|_| ())
}

/// Fill `buf` from `file` as far as the file allows; the count read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A regular-file member whose header was read: its path and size; the reader stands at
/// its data.
struct Member {
    name: String,
    size: u64,
}

/// The samples of one open tar shard.
struct TarIter {
    file: File,
    /// The file's length: no member's size is taken above it.
    len: u64,
    /// The next header, when it was read with the data before it.
    ahead: Ahead,
    /// The buffer a small member is read into.
    scratch: Vec<u8>,
    shard: String,
    from: u64,
    every: u64,
    offset: u64,
    /// The index of the next sample.
    index: u64,
    /// The first member of the next sample, already looked at.
    pending: Option<Member>,
    done: bool,
}

/// A numeric header field: octal text (NUL or space ended), or GNU base-256.
fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ' || b == 0)
        .take_while(|&b| b != b' ' && b != 0);
    let mut v: u64 = 0;
    let mut digits = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        v = v.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0 || field.iter().all(|&b| b == 0 || b == b' ')).then_some(v)
}

/// Bytes up to the first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    field.split(|&b| b == 0).next().unwrap_or(&[])
}

/// The `path` and `size` records of a pax extended header.
fn pax(data: &[u8]) -> Result<(Option<String>, Option<u64>), String> {
    let (mut path, mut size) = (None, None);
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a pax record without a length")?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= rest.len())
            .ok_or("a pax record with a bad length")?;
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (k, v) = (&record[..eq], &record[eq + 1..]);
            match k {
                b"path" => path = Some(String::from_utf8_lossy(v).into_owned()),
                b"size" => {
                    size = Some(
                        std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.parse().ok())
                            .ok_or("a pax size that is not a number")?,
                    );
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
    Ok((path, size))
}

impl TarIter {
    fn wanted(&self, i: u64) -> bool {
        i >= self.from && i % self.every == self.offset
    }

    fn padding(size: u64) -> u64 {
        (512 - size % 512) % 512
    }

    /// Pass over `n` bytes (the header after them is not read).
    fn skip(&mut self, n: u64) -> Result<(), String> {
        if n > 0 {
            let n = i64::try_from(n).map_err(|_| format!("a member of {n} bytes"))?;
            self.file
                .seek(SeekFrom::Current(n))
                .map_err(|e| e.to_string())?;
        }
        self.ahead = Ahead::Unknown;
        Ok(())
    }

    /// Read a member's `size` bytes of data, its padding and the header after it, in one
    /// read where the file allows: into the data's own `Vec` when it is large, through the
    /// scratch buffer when it is small.
    fn read_member(&mut self, size: u64) -> Result<Vec<u8>, String> {
        let pad = Self::padding(size);
        let total =
            usize::try_from(size + pad + 512).map_err(|_| format!("a member of {size} bytes"))?;
        let (size, pad) = (size as usize, pad as usize);
        if size as u64 <= SMALL {
            if self.scratch.len() < total {
                self.scratch.resize(total, 0);
            }
            let got =
                read_full(&mut self.file, &mut self.scratch[..total]).map_err(|e| e.to_string())?;
            if got < size {
                return Err("truncated".into());
            }
            self.ahead = Self::ahead_of(&self.scratch[(size + pad).min(got)..got]);
            Ok(self.scratch[..size].to_vec())
        } else {
            let mut v = Vec::with_capacity(total);
            read_spare(&mut self.file, &mut v).map_err(|e| e.to_string())?;
            let got = v.len();
            if got < size {
                return Err("truncated".into());
            }
            self.ahead = Self::ahead_of(&v[(size + pad).min(got)..got]);
            v.truncate(size);
            Ok(v)
        }
    }

    /// What follows a member's data and padding, from the bytes read after them.
    fn ahead_of(tail: &[u8]) -> Ahead {
        match tail.len() {
            0 => Ahead::End,
            512 => {
                let mut h = Box::new([0u8; 512]);
                h.copy_from_slice(tail);
                Ahead::Header(h)
            }
            _ => Ahead::Cut,
        }
    }

    /// Read a metadata member's data.
    fn meta(&mut self, size: u64) -> Result<Vec<u8>, String> {
        if size > META_MAX {
            return Err(format!(
                "a metadata member of {size} bytes (at most {META_MAX})"
            ));
        }
        self.read_member(size)
    }

    /// The next header, or `None` at the end of the file.
    fn header(&mut self) -> Result<Option<Box<[u8; 512]>>, String> {
        match std::mem::replace(&mut self.ahead, Ahead::Unknown) {
            Ahead::Header(h) => Ok(Some(h)),
            Ahead::End => Ok(None),
            Ahead::Cut => Err("a truncated header".into()),
            Ahead::Unknown => {
                let mut h = Box::new([0u8; 512]);
                match read_full(&mut self.file, &mut h[..]).map_err(|e| e.to_string())? {
                    0 => Ok(None),
                    512 => Ok(Some(h)),
                    _ => Err("a truncated header".into()),
                }
            }
        }
    }

    /// The next regular-file member's header, or `None` at the end of the archive; other
    /// entries are passed over.
    fn member(&mut self) -> Result<Option<Member>, String> {
        let (mut long_name, mut pax_path, mut pax_size) = (None, None, None);
        loop {
            // The end of the file without the closing blocks ends the archive too.
            let Some(h) = self.header()? else {
                return Ok(None);
            };
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            let stored = number(&h[148..156]).ok_or("a header checksum that is not a number")?;
            let sum: u64 = h
                .iter()
                .enumerate()
                .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
                .sum();
            let signed: i64 = h
                .iter()
                .enumerate()
                .map(|(i, &b)| {
                    i64::from(if (148..156).contains(&i) {
                        b' ' as i8
                    } else {
                        b as i8
                    })
                })
                .sum();
            if stored != sum && stored as i64 != signed {
                return Err(format!(
                    "a header whose checksum is {stored}, computed {sum}: not a tar archive, or a damaged one"
                ));
            }
            // A pax `size` is the next file's (not a GNU long name's or another pax header's).
            let meta = matches!(h[156], b'L' | b'K' | b'x' | b'g');
            let size = match pax_size.take_if(|_| !meta) {
                Some(s) => s,
                None => number(&h[124..136]).ok_or("a header size that is not a number")?,
            };
            // A size past the file's end is a damaged header or a truncated file: refused
            // before anything is sized by it (and the sums below cannot overflow).
            if size > self.len {
                return Err(format!(
                    "a member of {size} bytes in a file of {} bytes: truncated or damaged",
                    self.len
                ));
            }
            match h[156] {
                // a regular file (`7`: contiguous, the same to a reader)
                b'0' | 0 | b'7' => {
                    let name = match (pax_path.take(), long_name.take()) {
                        (Some(p), _) => p,
                        (None, Some(l)) => l,
                        (None, None) => {
                            let name = cstr(&h[..100]);
                            let prefix = cstr(&h[345..500]);
                            if &h[257..263] == b"ustar\0" && !prefix.is_empty() {
                                let mut p = String::from_utf8_lossy(prefix).into_owned();
                                p.push('/');
                                p.push_str(&String::from_utf8_lossy(name));
                                p
                            } else {
                                String::from_utf8_lossy(name).into_owned()
                            }
                        }
                    };
                    return Ok(Some(Member { name, size }));
                }
                b'L' => {
                    let v = self.meta(size)?;
                    long_name = Some(String::from_utf8_lossy(cstr(&v)).into_owned());
                }
                b'x' => {
                    let v = self.meta(size)?;
                    let (p, s) = pax(&v)?;
                    pax_path = p.or(pax_path);
                    pax_size = s;
                }
                _ => {
                    // A directory, a link, a global pax header, a GNU long link name, …
                    self.skip(size + Self::padding(size))?;
                    long_name = None;
                    pax_path = None;
                }
            }
        }
    }

    /// Read (or pass over) one member's data and padding.
    fn data(&mut self, m: &Member, keep: bool) -> Result<Option<Vec<u8>>, String> {
        if keep {
            let v = self
                .read_member(m.size)
                .map_err(|e| format!("{}: {e}", m.name))?;
            Ok(Some(v))
        } else {
            self.skip(m.size + Self::padding(m.size))?;
            Ok(None)
        }
    }

    /// The next sample (`None`: the end of the shard), its fields if it is wanted and
    /// `take`.
    fn sample(&mut self, take: bool) -> Result<Option<(String, Option<Fields>)>, String> {
        let first = match self.pending.take() {
            Some(m) => m,
            None => match self.member()? {
                Some(m) => m,
                None => return Ok(None),
            },
        };
        let keep = take && self.wanted(self.index);
        let key = split_key(&first.name).0.to_string();
        let mut fields = keep.then(Fields::new);
        let mut m = first;
        loop {
            let data = self.data(&m, keep)?;
            if let (Some(f), Some(d)) = (fields.as_mut(), data) {
                f.insert(split_key(&m.name).1.to_string(), d);
            }
            match self.member()? {
                None => {
                    self.done = true;
                    break;
                }
                Some(next) if split_key(&next.name).0 != key => {
                    self.pending = Some(next);
                    break;
                }
                Some(next) => m = next,
            }
        }
        Ok(Some((key, fields)))
    }
}

impl TarIter {
    /// The next sample at or after `from`: made if `take` and wanted (`Ok(Some)`), else
    /// passed over (`Ok(None)`), with whether this rank reads it.
    #[allow(clippy::type_complexity)]
    fn step(&mut self, take: bool) -> Option<Result<(bool, Option<TarSample>), SourceError>> {
        loop {
            if self.done && self.pending.is_none() {
                return None;
            }
            let index = self.index;
            match self.sample(take) {
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some((key, fields))) => {
                    self.index += 1;
                    if index < self.from {
                        continue;
                    }
                    let sample = fields.map(|fields| TarSample {
                        key,
                        shard: self.shard.clone(),
                        fields,
                    });
                    return Some(Ok((self.wanted(index), sample)));
                }
                Err(message) => {
                    // An unreadable archive ends the shard: the failure is the sample at
                    // `index`, reported by the rank that reads it (and not again when
                    // resuming after it).
                    self.done = true;
                    self.pending = None;
                    if self.wanted(index) {
                        return Some(Err(SourceError::Format {
                            path: self.shard.clone(),
                            message: format!("sample {index}: {message}"),
                        }));
                    }
                    return None;
                }
            }
        }
    }
}

impl Iterator for TarIter {
    type Item = Result<Option<TarSample>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true).map(|r| r.map(|(_, sample)| sample))
    }
}

impl ShardSamples<TarSample> for TarIter {
    /// The sample's headers are read, its members' data seeked past.
    fn skip_sample(&mut self) -> Option<Result<bool, SourceError>> {
        self.step(false).map(|r| r.map(|(mine, _)| mine))
    }
}

#[cfg(test)]
mod tests {
    use super::{split_key, TarReader, TarSample};
    use crate::source::{ShardReader, SourceError};
    use std::io::Read;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_key_ends_at_the_first_dot_of_the_file_name() {
        assert_eq!(split_key("a/b.c/000.seg.png"), ("a/b.c/000", "seg.png"));
        assert_eq!(split_key("x"), ("x", ""));
        assert_eq!(split_key("d/x.jpg"), ("d/x", "jpg"));
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("schedlab-tar-unit-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("shard.tar")
    }

    fn read_all(
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Vec<Result<Option<TarSample>, SourceError>> {
        TarReader.open(path, from, every, offset).unwrap().collect()
    }

    /// `(path, data)` of every regular file, as the `tar` crate reads the archive.
    fn reference(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
        a.entries()
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.header().entry_type().is_file())
            .map(|mut e| {
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut v = Vec::new();
                e.read_to_end(&mut v).unwrap();
                (name, v)
            })
            .collect()
    }

    #[test]
    fn gnu_long_names_ustar_prefixes_pax_paths_and_directories_read_as_the_tar_crate_does() {
        let path = temp("headers");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let long_dir = "d".repeat(120);
        let prefixed = format!("{}/{}", "p".repeat(90), "q".repeat(40));
        let data =
            |b: &mut tar::Builder<std::fs::File>, h: &mut tar::Header, name: &str, body: &[u8]| {
                h.set_size(body.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(h, name, body).unwrap();
            };
        // GNU headers: a name over 100 bytes is a GNU long-name entry.
        data(
            &mut b,
            &mut tar::Header::new_gnu(),
            &format!("{long_dir}/k0.jpg"),
            &[1; 7000],
        );
        data(
            &mut b,
            &mut tar::Header::new_gnu(),
            &format!("{long_dir}/k0.cls"),
            b"0",
        );
        // A directory between samples is passed over.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, "somedir/", std::io::empty()).unwrap();
        // ustar headers: a long path is split into prefix and name.
        data(
            &mut b,
            &mut tar::Header::new_ustar(),
            &format!("{prefixed}/k1.jpg"),
            &[2; 512],
        );
        data(
            &mut b,
            &mut tar::Header::new_ustar(),
            &format!("{prefixed}/k1.cls"),
            b"1",
        );
        // A pax header naming the path.
        let pax_name = format!("{}/k2.seg.png", "x".repeat(200));
        b.append_pax_extensions([("path", pax_name.as_bytes())])
            .unwrap();
        data(
            &mut b,
            &mut tar::Header::new_ustar(),
            "ignored.seg.png",
            &[3; 1],
        );
        data(&mut b, &mut tar::Header::new_gnu(), "k3", b"");
        b.finish().unwrap();
        drop(b);

        let want = reference(&path);
        assert_eq!(want.len(), 6);
        let got: Vec<TarSample> = read_all(&path, 0, 1, 0)
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        let flat: Vec<(String, Vec<u8>)> = got
            .iter()
            .flat_map(|s| {
                s.fields.iter().map(move |(ext, v)| {
                    let name = if ext.is_empty() {
                        s.key.clone()
                    } else {
                        format!("{}.{ext}", s.key)
                    };
                    (name, v.clone())
                })
            })
            .collect();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        let mut flat_sorted = flat.clone();
        flat_sorted.sort();
        assert_eq!(flat_sorted, want_sorted);
        let keys: Vec<&str> = got.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                format!("{long_dir}/k0"),
                format!("{prefixed}/k1"),
                format!("{}/k2", "x".repeat(200)),
                "k3".to_string()
            ]
        );
        // Stepped-over and skipped samples.
        let odd: Vec<Option<String>> = read_all(&path, 1, 2, 1)
            .into_iter()
            .map(|r| r.unwrap().map(|s| s.key))
            .collect();
        assert_eq!(
            odd,
            [Some(keys[1].to_string()), None, Some(keys[3].to_string())]
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_truncated_or_damaged_archive_is_one_format_error_naming_the_sample_then_the_end() {
        // Small members (read through the scratch buffer) and large ones (read into their
        // own buffer).
        for size in [600usize, 9_000] {
            let path = temp(&format!("bad{size}"));
            let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
            for i in 0..4 {
                let mut h = tar::Header::new_gnu();
                h.set_size(size as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, format!("{i}.bin"), &vec![i as u8; size][..])
                    .unwrap();
            }
            b.finish().unwrap();
            drop(b);
            let bytes = std::fs::read(&path).unwrap();
            let member = 512 + size.div_ceil(512) * 512;
            let all = read_all(&path, 0, 1, 0);
            assert_eq!(all.len(), 4);
            assert_eq!(
                all[3].as_ref().unwrap().as_ref().unwrap().fields["bin"],
                vec![3; size]
            );
            // Cut in the middle of sample 2's data.
            std::fs::write(&path, &bytes[..2 * member + 512 + 100]).unwrap();
            let r = read_all(&path, 0, 1, 0);
            assert_eq!(r.len(), 3);
            assert_eq!(
                r[1].as_ref().unwrap().as_ref().unwrap().fields["bin"],
                vec![1; size]
            );
            let e = r[2].as_ref().unwrap_err().to_string();
            assert!(
                e.contains("shard.tar") && e.contains("sample 2") && e.contains("truncated"),
                "{e}"
            );
            // Cut inside sample 2's header: sample 1 cannot be known complete.
            std::fs::write(&path, &bytes[..2 * member + 100]).unwrap();
            let r = read_all(&path, 0, 1, 0);
            assert_eq!(r.len(), 2);
            let e = r[1].as_ref().unwrap_err().to_string();
            assert!(
                e.contains("sample 1") && e.contains("truncated header"),
                "{e}"
            );
            // Cut at a member's end, without the closing blocks: the archive ends there.
            std::fs::write(&path, &bytes[..2 * member]).unwrap();
            assert_eq!(read_all(&path, 0, 1, 0).len(), 2);
            // A damaged header (its checksum does not match).
            let mut bad = bytes.clone();
            bad[member] ^= 0x55;
            std::fs::write(&path, &bad).unwrap();
            let r = read_all(&path, 0, 1, 0);
            // Sample 0 cannot be known complete (the damaged member may be one of its
            // own): the failure is sample 0's.
            assert_eq!(r.len(), 1);
            let e = r[0].as_ref().unwrap_err().to_string();
            assert!(e.contains("sample 0") && e.contains("checksum"), "{e}");
            // Another rank, which does not read sample 0, sees no failure and no sample.
            assert_eq!(read_all(&path, 0, 2, 1).len(), 0);
            // Not a tar file at all.
            std::fs::write(&path, "hello, this is not a tar archive").unwrap();
            let r = read_all(&path, 0, 1, 0);
            assert_eq!(r.len(), 1);
            assert!(r[0].as_ref().unwrap_err().to_string().contains("sample 0"));
            std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        }
    }

    #[test]
    fn a_header_size_past_the_files_end_is_one_error_not_an_allocation() {
        // Sizes no file here holds (octal 8 GiB, base-256 2^63): one error naming the sample,
        // before anything is sized by them; a contiguous file (type `7`) reads as a file.
        for huge in [8u64 << 30, 1u64 << 63] {
            let path = temp(&format!("huge{}", huge.trailing_zeros()));
            let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
            for (i, kind) in [tar::EntryType::Regular, tar::EntryType::Continuous]
                .into_iter()
                .enumerate()
            {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_size(3);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, format!("{i}.bin"), &b"abc"[..])
                    .unwrap();
            }
            b.finish().unwrap();
            drop(b);
            let ok = read_all(&path, 0, 1, 0);
            assert_eq!(ok.len(), 2);
            assert_eq!(
                ok[1].as_ref().unwrap().as_ref().unwrap().fields["bin"],
                b"abc"
            );
            // Sample 1's header (the second 512-byte header, after 512 of sample 0's data
            // block) claims `huge` bytes, with a valid checksum.
            let mut bytes = std::fs::read(&path).unwrap();
            let h = &mut bytes[1024..1536];
            let mut header = tar::Header::new_gnu();
            header.as_mut_bytes().copy_from_slice(h);
            header.set_size(huge);
            header.set_cksum();
            h.copy_from_slice(header.as_bytes());
            std::fs::write(&path, &bytes).unwrap();
            let r = read_all(&path, 0, 1, 0);
            let e = r.last().unwrap().as_ref().unwrap_err().to_string();
            assert!(
                e.contains("sample")
                    && e.contains(&format!("{huge} bytes"))
                    && e.contains("damaged"),
                "{e}"
            );
            std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        }
    }
}
