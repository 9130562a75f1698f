//! WebDataset-style tar shards: members `key.ext` grouped into one sample per key.

use std::collections::BTreeMap;
use std::fs::File;
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::shards::{io_error, ShardIter, ShardReader, ShardSamples};
use super::SourceError;

/// One sample of a tar shard: the members that share a key, by extension. A member's bytes
/// are a `Vec<u8>` ([`TarReader`]) or whatever [`TarBodies`] makes ([`TarReaderInto`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarSample<B = Vec<u8>> {
    /// The key: the member's path up to the first `.` of its file name (`dir/000123` for
    /// `dir/000123.jpg`), WebDataset's `__key__`.
    pub key: String,
    /// The shard it came from (WebDataset's `__url__`).
    pub shard: String,
    /// Each member's bytes by extension (`jpg`, `cls`, `seg.png`, …).
    pub fields: BTreeMap<String, B>,
}

/// Where a tar member's bytes are read: a large member's data is read once, straight into
/// the body [`alloc`](TarBodies::alloc) makes (from Python: an uninitialised `bytes`, which
/// is then handed over as it is); a small one (≤ 4 KiB) is read with the header after it
/// and [`copy`](TarBodies::copy)'d out.
///
/// # Safety
/// `alloc(len)` returns a body and a pointer valid for writes of `len` bytes for as long as
/// the body lives (moving the body does not move those bytes), which nothing else reads or
/// writes until the reader has filled them and hands the body on.
pub unsafe trait TarBodies: Send + Sync + 'static {
    /// A member's bytes.
    type Body: Send + 'static;

    /// A body of `len` bytes to be filled through the pointer.
    ///
    /// # Errors
    /// If it cannot be made (the message names why): the sample's one failed item.
    fn alloc(&self, len: usize) -> Result<(Self::Body, *mut u8), String>;

    /// Called once all `len` bytes of a body from `alloc` were written.
    fn filled(&self, body: &mut Self::Body, len: usize) {
        let _ = (body, len);
    }

    /// A body holding `data`.
    ///
    /// # Errors
    /// As [`alloc`](TarBodies::alloc).
    fn copy(&self, data: &[u8]) -> Result<Self::Body, String>;
}

/// Members read into `Vec<u8>`s (what [`TarReader`] gives).
#[derive(Clone, Copy, Debug, Default)]
pub struct VecBodies;

// SAFETY: the pointer is the start of the `Vec`'s own allocation of at least `len` bytes,
// which moving the `Vec` does not move; the bytes become its contents (`set_len`) only in
// `filled`, after they were written.
unsafe impl TarBodies for VecBodies {
    type Body = Vec<u8>;

    fn alloc(&self, len: usize) -> Result<(Vec<u8>, *mut u8), String> {
        let mut v = Vec::with_capacity(len);
        let ptr = v.as_mut_ptr();
        Ok((v, ptr))
    }

    fn filled(&self, body: &mut Vec<u8>, len: usize) {
        // SAFETY: the caller wrote `len` bytes from the start (`TarBodies::filled`), and
        // `alloc` reserved at least `len`.
        unsafe { body.set_len(len) }
    }

    fn copy(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        Ok(data.to_vec())
    }
}

/// Reads tar shards as WebDataset does: consecutive regular-file members with the same key
/// form one [`TarSample`]; directories and other entries are passed over. ustar, GNU (long
/// names, base-256 sizes) and pax (`path`, `size`) headers are understood.
///
/// The shard is parsed on the thread that pulls the source (no reader thread, no channel),
/// every read at an offset the reader keeps (`pread`: passing over data is no syscall): a
/// large member's data, its padding and the next header in one read, the data straight
/// into the sample's `Vec` (one copy from the file, no zeroing; [`TarReaderInto`] reads it
/// into other bodies, a Python `bytes` for one). Samples stepped over (before a resume
/// point, or another rank's) and samples passed over ([`ShardSamples::skip_sample`], as a
/// shuffle buffer's restore does for the positions it does not keep) are not read: only
/// their headers, a WebDataset sample of a large and a small member in one read of 1,536
/// bytes.
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

/// [`TarReader`] reading members' bytes into the bodies `A` makes (see [`TarBodies`]):
/// samples are [`TarSample<A::Body>`](TarSample). Its fingerprint is [`TarReader`]'s (`tar`):
/// a state from one resumes the other.
///
/// ```
/// use loader::source::{TarReaderInto, VecBodies, Shards, Source};
/// let dir = std::env::temp_dir().join(format!("schedlab-doc-tarinto-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("shard-0.tar");
/// let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
/// let big = vec![7u8; 10_000];
/// let mut h = tar::Header::new_gnu();
/// h.set_size(big.len() as u64);
/// h.set_mode(0o644);
/// h.set_cksum();
/// b.append_data(&mut h, "a.bin", &big[..]).unwrap();
/// b.finish().unwrap();
/// drop(b);
/// let mut s = Shards::new(vec![path], TarReaderInto(VecBodies));
/// s.start(0).unwrap();
/// assert_eq!(s.next().unwrap().unwrap().fields["bin"], big);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TarReaderInto<A>(pub A);

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
type Fields<B> = BTreeMap<String, B>;

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
        TarIter::open(VecBodies, path, from, every, offset)
    }
}

impl<A: TarBodies + Clone> ShardReader for TarReaderInto<A> {
    type Item = TarSample<A::Body>;

    fn name(&self) -> String {
        "tar".into()
    }

    fn open(
        &self,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<TarSample<A::Body>>, SourceError> {
        TarIter::open(self.0.clone(), path, from, every, offset)
    }
}

impl<A: TarBodies> TarIter<A> {
    fn open(
        bodies: A,
        path: &Path,
        from: u64,
        every: u64,
        offset: u64,
    ) -> Result<ShardIter<TarSample<A::Body>>, SourceError> {
        let file = File::open(path).map_err(|e| io_error(path, &e))?;
        let len = file.metadata().map_err(|e| io_error(path, &e))?.len();
        Ok(Box::new(TarIter {
            bodies,
            file,
            pos: 0,
            window: Vec::new(),
            window_at: 0,
            window_eof: false,
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

/// The bytes read at a header that was not read with the data before it: the header, a
/// block of data and the next header. Passing over a sample of a large member and a small
/// one (≤ 512 bytes: a WebDataset class, a key) is then one read of 1,536 bytes, at the
/// small member's header: the next sample's header is in it.
const WINDOW: usize = 1536;

/// Members up to this size are read through the scratch buffer (and copied out); larger
/// ones straight into their own `Vec`.
const SMALL: u64 = 4096;

/// Fill `len` bytes at `a`, then `b`, from `file` at `pos` as far as the file allows
/// (`preadv`); the count read.
///
/// # Safety
/// `a` is valid for writes of `len` bytes.
#[cfg(unix)]
unsafe fn read_two(
    file: &File,
    pos: u64,
    a: *mut u8,
    len: usize,
    b: &mut [u8],
) -> std::io::Result<usize> {
    use std::os::unix::io::AsRawFd;
    let total = len + b.len();
    let mut got = 0;
    while got < total {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 2];
        let count = if got < len {
            // SAFETY: `got < len`: within the `len` bytes at `a`.
            iov[0].iov_base = unsafe { a.add(got) }.cast();
            iov[0].iov_len = len - got;
            iov[1].iov_base = b.as_mut_ptr().cast();
            iov[1].iov_len = b.len();
            2
        } else {
            iov[0].iov_base = b[got - len..].as_mut_ptr().cast();
            iov[0].iov_len = total - got;
            1
        };
        // SAFETY: each iovec is memory this function may write (`a`'s `len` bytes by the
        // caller's promise, `b` borrowed mutably), given as raw pointers.
        let at = libc::off_t::try_from(pos + got as u64)
            .map_err(|_| std::io::Error::other("an offset past off_t"))?;
        let n = unsafe { libc::preadv(file.as_raw_fd(), iov.as_ptr(), count, at) };
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
        got += n as usize;
    }
    Ok(got)
}

/// Fill `len` bytes at `a`, then `b`, from `file` at `pos` as far as the file allows; the
/// count read.
///
/// # Safety
/// `a` is valid for writes of `len` bytes.
#[cfg(not(unix))]
unsafe fn read_two(
    file: &File,
    pos: u64,
    a: *mut u8,
    len: usize,
    b: &mut [u8],
) -> std::io::Result<usize> {
    let mut first = vec![0u8; len];
    let got = read_full(file, pos, &mut first)?;
    // SAFETY: `got ≤ len` bytes into `a`'s `len` (the caller's promise).
    unsafe { std::ptr::copy_nonoverlapping(first.as_ptr(), a, got) };
    if got < len {
        return Ok(got);
    }
    Ok(len + read_full(file, pos + len as u64, b)?)
}

/// Read into `buf` from `file` at `pos` (`pread`: the file's own offset is not used).
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

/// Read into `buf` from `file` at `pos`.
#[cfg(not(unix))]
fn read_at(mut file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(pos))?;
    file.read(buf)
}

/// Fill `buf` from `file` at `pos` as far as the file allows; the count read.
fn read_full(file: &File, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match read_at(file, &mut buf[got..], pos + got as u64) {
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
struct TarIter<A: TarBodies> {
    /// What members' bytes are read into.
    bodies: A,
    file: File,
    /// The offset of the next byte to read (every read says where: the file's own offset is
    /// not used, and passing over data is adding to this).
    pos: u64,
    /// The bytes read last from `window_at` on when a header was not known: the headers of
    /// the small members after it, and the next sample's, are usually in it.
    window: Vec<u8>,
    window_at: u64,
    /// The window ends where the file does.
    window_eof: bool,
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

impl<A: TarBodies> TarIter<A> {
    fn wanted(&self, i: u64) -> bool {
        i >= self.from && i % self.every == self.offset
    }

    fn padding(size: u64) -> u64 {
        (512 - size % 512) % 512
    }

    /// Pass over `n` bytes (the header after them is not read).
    fn skip(&mut self, n: u64) -> Result<(), String> {
        self.pos = self
            .pos
            .checked_add(n)
            .ok_or_else(|| format!("a member of {n} bytes"))?;
        self.ahead = Ahead::Unknown;
        Ok(())
    }

    /// Read a member's `size` bytes of data, its padding and the header after it, in one
    /// read where the file allows: the data straight into a body from `bodies` (the rest
    /// into the scratch buffer) when it is large, all through the scratch buffer when it is
    /// small.
    fn read_body(&mut self, size: u64) -> Result<A::Body, String> {
        if size <= SMALL {
            let v = self.read_member(size)?;
            return self.bodies.copy(&v);
        }
        let pad = Self::padding(size);
        let size = usize::try_from(size).map_err(|_| format!("a member of {size} bytes"))?;
        let tail = pad as usize + 512;
        if self.scratch.len() < tail {
            self.scratch.resize(tail, 0);
        }
        let (mut body, ptr) = self.bodies.alloc(size)?;
        // SAFETY: `ptr` is valid for writes of `size` bytes while `body` lives (`TarBodies`).
        let got = unsafe { read_two(&self.file, self.pos, ptr, size, &mut self.scratch[..tail]) }
            .map_err(|e| e.to_string())?;
        self.pos += got as u64;
        if got < size {
            return Err("truncated".into());
        }
        self.bodies.filled(&mut body, size);
        self.ahead = Self::ahead_of(&self.scratch[(pad as usize).min(got - size)..got - size]);
        Ok(body)
    }

    /// Read a member's `size` bytes of data (a small member's, or metadata), its padding and
    /// the header after it, in one read where the file allows, through the scratch buffer.
    fn read_member(&mut self, size: u64) -> Result<Vec<u8>, String> {
        let pad = Self::padding(size);
        let total =
            usize::try_from(size + pad + 512).map_err(|_| format!("a member of {size} bytes"))?;
        let (size, pad) = (size as usize, pad as usize);
        if self.scratch.len() < total {
            self.scratch.resize(total, 0);
        }
        let got = read_full(&self.file, self.pos, &mut self.scratch[..total])
            .map_err(|e| e.to_string())?;
        self.pos += got as u64;
        if got < size {
            return Err("truncated".into());
        }
        self.ahead = Self::ahead_of(&self.scratch[(size + pad).min(got)..got]);
        Ok(self.scratch[..size].to_vec())
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
                // From the window when it holds the header (or ends with the file before
                // it), else from a new window read at the header.
                let len = self.window.len() as u64;
                let hit = self.pos.checked_sub(self.window_at).is_some_and(|o| {
                    o.checked_add(512).is_some_and(|e| e <= len) || (self.window_eof && o <= len)
                });
                if !hit {
                    self.window.resize(WINDOW, 0);
                    let got = read_full(&self.file, self.pos, &mut self.window)
                        .map_err(|e| e.to_string())?;
                    self.window.truncate(got);
                    self.window_at = self.pos;
                    self.window_eof = got < WINDOW;
                }
                let o = (self.pos - self.window_at) as usize;
                match self.window.len() - o {
                    0 => Ok(None),
                    n if n < 512 => Err("a truncated header".into()),
                    _ => {
                        let mut h = Box::new([0u8; 512]);
                        h.copy_from_slice(&self.window[o..o + 512]);
                        self.pos += 512;
                        Ok(Some(h))
                    }
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
            // The sums of the header's bytes, the checksum field's counted as spaces
            // (unsigned, and signed as some old writers did): whole-block sums, which
            // vectorise, less the field's bytes.
            let field = &h[148..156];
            let sum: u64 = h.iter().map(|&b| u64::from(b)).sum::<u64>()
                - field.iter().map(|&b| u64::from(b)).sum::<u64>()
                + 8 * u64::from(b' ');
            let signed: i64 = h.iter().map(|&b| i64::from(b as i8)).sum::<i64>()
                - field.iter().map(|&b| i64::from(b as i8)).sum::<i64>()
                + 8 * i64::from(b' ');
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
    fn data(&mut self, m: &Member, keep: bool) -> Result<Option<A::Body>, String> {
        if keep {
            let v = self
                .read_body(m.size)
                .map_err(|e| format!("{}: {e}", m.name))?;
            Ok(Some(v))
        } else {
            self.skip(m.size + Self::padding(m.size))?;
            Ok(None)
        }
    }

    /// The next sample (`None`: the end of the shard), its fields if it is wanted and
    /// `take`.
    #[allow(clippy::type_complexity)]
    fn sample(&mut self, take: bool) -> Result<Option<(String, Option<Fields<A::Body>>)>, String> {
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

impl<A: TarBodies> TarIter<A> {
    /// The next sample at or after `from`: made if `take` and wanted (`Ok(Some)`), else
    /// passed over (`Ok(None)`), with whether this rank reads it.
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        take: bool,
    ) -> Option<Result<(bool, Option<TarSample<A::Body>>), SourceError>> {
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

impl<A: TarBodies> Iterator for TarIter<A> {
    type Item = Result<Option<TarSample<A::Body>>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(true).map(|r| r.map(|(_, sample)| sample))
    }
}

impl<A: TarBodies> ShardSamples<TarSample<A::Body>> for TarIter<A> {
    /// The sample's headers are read, its members' data seeked past.
    fn skip_sample(&mut self) -> Option<Result<bool, SourceError>> {
        self.step(false).map(|r| r.map(|(mine, _)| mine))
    }
}

#[cfg(test)]
mod tests {
    use super::{split_key, TarBodies, TarReader, TarReaderInto, TarSample, SMALL};
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

    /// Append a regular file `name` holding `body` under a GNU header.
    fn append_file(b: &mut tar::Builder<std::fs::File>, name: &str, body: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
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
                append_file(&mut b, &format!("{i}.bin"), &vec![i as u8; size]);
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

    /// Bodies that count what was asked of them, and fill a large body with a pattern first
    /// (the reader must overwrite every byte of it).
    #[derive(Clone, Default)]
    struct Counted(std::sync::Arc<std::sync::Mutex<(usize, usize)>>);

    // SAFETY: the pointer is the start of the boxed slice of `len` bytes, which moving the
    // box does not move.
    unsafe impl TarBodies for Counted {
        type Body = Box<[u8]>;
        fn alloc(&self, len: usize) -> Result<(Box<[u8]>, *mut u8), String> {
            self.0.lock().unwrap().0 += 1;
            let mut b = vec![0xA5; len].into_boxed_slice();
            let ptr = b.as_mut_ptr();
            Ok((b, ptr))
        }
        fn copy(&self, data: &[u8]) -> Result<Box<[u8]>, String> {
            self.0.lock().unwrap().1 += 1;
            Ok(data.into())
        }
    }

    #[test]
    fn members_read_into_other_bodies_are_the_same_bytes_large_ones_allocated_once() {
        let path = temp("bodies");
        let sizes = [0usize, 1, 511, 512, 513, 4096, 4097, 8192, 50_000, 123_457];
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (i, &size) in sizes.iter().enumerate() {
            let body: Vec<u8> = (0..size).map(|j| (j * 7 + i) as u8).collect();
            for (ext, data) in [("bin", &body[..]), ("cls", &b"3"[..])] {
                append_file(&mut b, &format!("{i:02}.{ext}"), data);
            }
        }
        b.finish().unwrap();
        drop(b);
        let want = read_all(&path, 0, 1, 0);
        let bodies = Counted::default();
        let got: Vec<_> = TarReaderInto(bodies.clone())
            .open(&path, 0, 1, 0)
            .unwrap()
            .collect();
        assert_eq!(got.len(), sizes.len());
        for (w, g) in want.iter().zip(&got) {
            let (w, g) = (
                w.as_ref().unwrap().as_ref().unwrap(),
                g.as_ref().unwrap().as_ref().unwrap(),
            );
            assert_eq!(w.key, g.key);
            assert_eq!(w.fields.len(), g.fields.len());
            for (ext, v) in &w.fields {
                assert_eq!(&g.fields[ext][..], &v[..], "{} {ext}", w.key);
            }
        }
        let large = sizes.iter().filter(|&&s| s as u64 > SMALL).count();
        let (allocs, copies) = *bodies.0.lock().unwrap();
        assert_eq!((allocs, copies), (large, 2 * sizes.len() - large));
        // Another rank's samples and samples before `from` are not read into a body.
        let bodies = Counted::default();
        let odd: Vec<_> = TarReaderInto(bodies.clone())
            .open(&path, 4, 2, 1)
            .unwrap()
            .map(|r| r.unwrap().map(|s| s.key))
            .collect();
        assert_eq!(
            odd,
            [
                None,
                Some("05".into()),
                None,
                Some("07".into()),
                None,
                Some("09".into())
            ]
        );
        let read_large = [5, 7, 9]
            .iter()
            .filter(|&&i| sizes[i] as u64 > SMALL)
            .count();
        assert_eq!(bodies.0.lock().unwrap().0, read_large);
        // Cut inside the last (large) member, the file still longer than the member: the
        // samples before it, then one error.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2048 - 20_000]).unwrap();
        let cut: Vec<_> = TarReaderInto(Counted::default())
            .open(&path, 0, 1, 0)
            .unwrap()
            .collect();
        assert_eq!(cut.len(), sizes.len());
        assert!(cut[..sizes.len() - 1].iter().all(|r| r.is_ok()));
        let e = cut.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("sample 9") && e.contains("truncated"), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
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
