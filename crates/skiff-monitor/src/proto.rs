//! The attach protocol, spoken over a unix stream socket (`<container dir>/attach.sock`, or a
//! socketpair handed to the monitor for the client that started the container).
//!
//! Every message is a frame: one kind byte, a big-endian u32 length, the payload.
//! Monitor → client: [`STDOUT`], [`STDERR`] (output), [`EXIT`] (payload: the exit status as a
//! big-endian i32). Client → monitor: [`STDIN`] (input), [`STDIN_CLOSE`] (close the container's
//! stdin), [`RESIZE`] (rows and columns, two big-endian u16), [`CLEANUP`] (this client will do
//! the cleanup after the exit itself: the monitor waits for its [`CLEANED`], and runs its exit
//! command only if the client goes away without it).

use std::io::{self, Read, Write};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const STDIN_CLOSE: u8 = 4;
pub const RESIZE: u8 = 5;
pub const CLEANUP: u8 = 6;
pub const CLEANED: u8 = 7;

/// Largest payload we send or accept in one frame.
pub const MAX_FRAME: usize = 64 * 1024;

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    w.write_all(&frame(kind, payload))
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("attach frame of {len} bytes is too large")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Splits complete frames off the front of `buf` (for non-blocking readers).
pub fn take_frames(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len() - off >= 5 {
        let len = u32::from_be_bytes([buf[off + 1], buf[off + 2], buf[off + 3], buf[off + 4]]) as usize;
        if len > MAX_FRAME {
            return Err(format!("attach frame of {len} bytes is too large"));
        }
        if buf.len() - off < 5 + len {
            break;
        }
        out.push((buf[off], buf[off + 5..off + 5 + len].to_vec()));
        off += 5 + len;
    }
    buf.drain(..off);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whole_and_split() {
        let mut wire = frame(STDOUT, b"hello");
        wire.extend(frame(EXIT, &7i32.to_be_bytes()));
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);

        let mut buf = wire[..7].to_vec();
        assert!(take_frames(&mut buf).unwrap().is_empty());
        buf.extend_from_slice(&wire[7..]);
        let got = take_frames(&mut buf).unwrap();
        assert_eq!(got.len(), 2);
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut wire = vec![STDIN];
        wire.extend_from_slice(&(MAX_FRAME as u32 + 1).to_be_bytes());
        assert!(read_frame(&mut &wire[..]).is_err());
        assert!(take_frames(&mut wire).is_err());
    }
}
