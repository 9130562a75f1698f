//! The user's side of a process stage's hand-off (`schedlab/_process.py`): one message out to
//! a worker process and its answer back, over the worker's socket, **without the GIL**.
//!
//! A process stage's thread takes the GIL to pickle the item, calls [`exchange`] (which
//! gives the GIL up once for the write and the wait), and takes it again to unpickle the
//! answer: one wait for the GIL per item instead of one per system call.

use std::io::{ErrorKind, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use pyo3::exceptions::{PyEOFError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The first read of an answer: enough for the common small one (a sample, an index).
const FIRST_READ: usize = 4096;

/// Wait until `fd` has something to read (or is closed), with `poll(2)`.
///
/// Why not just block in `read`: a reader blocked on a Unix stream socket is also woken each
/// time the peer takes a message this socket sent (the kernel wakes the socket's one wait
/// queue for "writable" too), and the worker takes the queued item while this thread waits
/// for its answer: a second wake-up and context switch per item for nothing. `poll` asks for
/// readable only, so the thread wakes once, when the answer is there.
fn wait_readable(fd: i32) -> std::io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid `pollfd` for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r >= 0 {
            // readable, or hung up / in error: the read that follows says which
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Send `msg` on the connected socket `fd` (framed: its length as 4 bytes, little-endian,
/// then the bytes) and return the answer framed the same way, waiting without the GIL.
///
/// `EOFError` when the worker closed the socket (it died) before a whole answer came;
/// `ConnectionResetError` or `BrokenPipeError` when it closed with the message unread or
/// before it was sent (it died idle); `ValueError` naming `msg` when it is 4 GiB or more.
#[pyfunction]
pub(crate) fn exchange<'py>(py: Python<'py>, fd: i32, msg: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let len = u32::try_from(msg.len())
        .map_err(|_| PyValueError::new_err("msg: a message must be shorter than 4 GiB"))?;
    let answer = py.allow_threads(|| -> std::io::Result<Option<Vec<u8>>> {
        // SAFETY: `fd` is the open socket of a Python `socket.socket` that the caller holds
        // for the length of this call (a process stage closes a worker's socket only once
        // no thread is exchanging on it); `ManuallyDrop` keeps this borrowed stream from
        // closing it.
        let mut s = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
        let mut frame = Vec::with_capacity(4 + msg.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(msg);
        s.write_all(&frame)?;
        wait_readable(fd)?;
        // the head and (mostly) the whole answer in one read: the answer is all there is
        // on this socket, its sender waits for our next message
        let mut body = vec![0u8; FIRST_READ];
        let mut have = 0;
        while have < 4 {
            match s.read(&mut body[have..]) {
                Ok(0) => return Ok(None),
                Ok(n) => have += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let want = 4 + u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
        if want > have {
            body.resize(want, 0);
            match s.read_exact(&mut body[have..]) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        } else if have > want {
            // One answer is in flight per socket: bytes past it would be another's.
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                format!("a worker sent {have} bytes for an answer of {want}"),
            ));
        }
        body.truncate(want);
        Ok(Some(body))
    })?;
    match answer {
        Some(body) => Ok(PyBytes::new(py, &body[4..])),
        None => Err(PyEOFError::new_err(
            "the worker process closed its socket before it answered",
        )),
    }
}
