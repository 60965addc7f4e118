//! A zstd stream reader for layers (`application/vnd.oci.image.layer.v1.tar+zstd`):
//! pure Rust (`ruzstd`), every frame of the stream in turn, skippable frames (the
//! zstd:chunked table of contents lives in them) skipped. The frame checksum is not
//! relied on: `unpack` checks the blob digest and the config's diff_id anyway.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// The zstd frame magic number, little-endian on the wire.
pub(crate) const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Decodes a stream of zstd frames.
pub(crate) struct ZstdReader<R> {
    source: R,
    decoder: FrameDecoder,
    /// A frame is being decoded.
    in_frame: bool,
}

impl<R: BufRead> ZstdReader<R> {
    pub(crate) fn new(source: R) -> Self {
        Self {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.source
    }

    /// Starts the next frame; false at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped < u64::from(length) {
                        return Err(truncated());
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

impl<R: BufRead> Read for ZstdReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let want = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(want))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() {
                self.in_frame = false;
            }
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "zstd stream is truncated")
}

#[cfg(test)]
mod tests {
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    use super::*;

    #[test]
    fn zstd_reads_several_frames_and_skips_skippable_ones() {
        let a = vec![b'a'; 200_000];
        let b = b"second frame".to_vec();
        let mut stream = compress_to_vec(&a[..], CompressionLevel::Fastest);
        // A skippable frame (magic 0x184D2A50..5F), 3 bytes of payload.
        stream.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        stream.extend(compress_to_vec(&b[..], CompressionLevel::Fastest));
        let mut out = Vec::new();
        ZstdReader::new(&stream[..])
            .read_to_end(&mut out)
            .expect("decode");
        assert_eq!(out.len(), a.len() + b.len());
        assert!(out.ends_with(&b));
        assert!(out[..a.len()].iter().all(|&c| c == b'a'));
    }

    #[test]
    fn zstd_garbage_and_truncation_are_errors() {
        let mut bad = MAGIC.to_vec();
        bad.extend_from_slice(&[0xff; 16]);
        assert!(ZstdReader::new(&bad[..])
            .read_to_end(&mut Vec::new())
            .is_err());
        let good = compress_to_vec(&vec![7u8; 100_000][..], CompressionLevel::Fastest);
        let cut = &good[..good.len() / 2];
        assert!(ZstdReader::new(cut).read_to_end(&mut Vec::new()).is_err());
    }
}
