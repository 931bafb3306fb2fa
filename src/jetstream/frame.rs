//! Turns WebSocket messages into event JSON: text as is, binary through the zstd dictionary.
//!
//! Each binary message is one independent zstd frame compressed with a fixed dictionary. The
//! dictionary is prepared once and reused; output is capped so that a decompression bomb costs
//! at most the cap, and the output buffer is reused across frames.

use std::path::Path;

use sha2::{Digest, Sha256};
use zstd::bulk::Decompressor;
use zstd::dict::DecoderDictionary;

/// The first four bytes of a structured zstd dictionary.
const DICTIONARY_MAGIC: [u8; 4] = [0x37, 0xA4, 0x30, 0xEC];

/// Why a frame could not be turned into JSON. Each value is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame names another dictionary than the configured one.
    #[error("frame compressed with another dictionary")]
    Dictionary,
    /// The frame is not valid zstd, is truncated, or expands past the cap.
    #[error("frame does not decompress within the size cap")]
    Decompress,
    /// A binary frame arrived but no dictionary is configured.
    #[error("binary frame on an uncompressed connection")]
    Unexpected,
    /// The frame is larger than the cap.
    #[error("frame larger than the size cap")]
    TooLarge,
}

impl FrameError {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameError::Dictionary => "dictionary",
            FrameError::Decompress => "decompress",
            FrameError::Unexpected => "unexpected_binary",
            FrameError::TooLarge => "too_large",
        }
    }
}

/// Errors loading the dictionary; all fatal at start-up.
#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    /// The file could not be read.
    #[error("cannot read the zstd dictionary {path}: {source}")]
    Read {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a structured zstd dictionary.
    #[error("{0} is not a zstd dictionary (bad magic)")]
    Magic(String),
    /// The file's sha256 differs from the configured one.
    #[error("zstd dictionary sha256 is {actual}, configured {expected}")]
    Checksum {
        /// Configured.
        expected: String,
        /// Found.
        actual: String,
    },
}

/// A loaded dictionary.
pub struct Dictionary {
    id: u32,
    prepared: DecoderDictionary<'static>,
}

impl Dictionary {
    /// Loads and checks a dictionary file.
    pub fn load(path: &Path, sha256: Option<&str>) -> Result<Dictionary, DictionaryError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| DictionaryError::Read {
            path: shown.clone(),
            source,
        })?;
        if let Some(expected) = sha256 {
            let actual = hex(&Sha256::digest(&bytes));
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(DictionaryError::Checksum {
                    expected: expected.to_owned(),
                    actual,
                });
            }
        }
        Dictionary::from_bytes(&bytes).ok_or(DictionaryError::Magic(shown))
    }

    /// Prepares a dictionary from its bytes; `None` unless it is a structured dictionary.
    pub fn from_bytes(bytes: &[u8]) -> Option<Dictionary> {
        if bytes.len() < 8 || bytes[..4] != DICTIONARY_MAGIC {
            return None;
        }
        let id = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        Some(Dictionary {
            id,
            prepared: DecoderDictionary::copy(bytes),
        })
    }

    /// The dictionary ID every frame must name.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// Decodes frames for one connection.
pub struct FrameDecoder<'d> {
    dictionary: Option<(&'d Dictionary, Decompressor<'d>)>,
    cap: usize,
    buffer: Vec<u8>,
}

impl<'d> FrameDecoder<'d> {
    /// A decoder with an optional dictionary and a cap on one frame's JSON size.
    pub fn new(
        dictionary: Option<&'d Dictionary>,
        cap: usize,
    ) -> std::io::Result<FrameDecoder<'d>> {
        let dictionary = match dictionary {
            Some(dictionary) => {
                let decompressor = Decompressor::with_prepared_dictionary(&dictionary.prepared)?;
                Some((dictionary, decompressor))
            }
            None => None,
        };
        Ok(FrameDecoder {
            dictionary,
            cap,
            buffer: Vec::new(),
        })
    }

    /// The JSON of one binary frame.
    pub fn binary(&mut self, frame: &[u8]) -> Result<&[u8], FrameError> {
        let Some((dictionary, decompressor)) = self.dictionary.as_mut() else {
            return Err(FrameError::Unexpected);
        };
        if zstd::zstd_safe::get_dict_id_from_frame(frame).map(|id| id.get()) != Some(dictionary.id)
        {
            return Err(FrameError::Dictionary);
        }
        self.buffer.clear();
        self.buffer.reserve(self.cap);
        decompressor
            .decompress_to_buffer(frame, &mut self.buffer)
            .map_err(|_| FrameError::Decompress)?;
        Ok(&self.buffer)
    }

    /// The JSON of one text frame.
    pub fn text<'t>(&self, frame: &'t [u8]) -> Result<&'t [u8], FrameError> {
        if frame.len() > self.cap {
            return Err(FrameError::TooLarge);
        }
        Ok(frame)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained() -> Vec<u8> {
        let samples: Vec<Vec<u8>> = (0..400)
            .map(|i| {
                format!(
                    r#"{{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaa{:03}","time_us":{},"kind":"identity","identity":{{"seq":{i}}}}}"#,
                    i % 1000,
                    1_700_000_000_000_000u64 + i
                )
                .into_bytes()
            })
            .collect();
        zstd::dict::from_samples(&samples, 4096).expect("dictionary trains")
    }

    #[test]
    fn round_trips_a_frame_and_reuses_the_buffer() {
        let bytes = trained();
        let dictionary = Dictionary::from_bytes(&bytes).expect("structured dictionary");
        let mut compressor =
            zstd::bulk::Compressor::with_dictionary(3, &bytes).expect("compressor");
        let mut decoder = FrameDecoder::new(Some(&dictionary), 1 << 16).expect("decoder");
        for text in [r#"{"a":1}"#, r#"{"b":"two"}"#] {
            let frame = compressor.compress(text.as_bytes()).expect("compress");
            assert_eq!(decoder.binary(&frame).expect("decodes"), text.as_bytes());
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let bytes = trained();
        let dictionary = Dictionary::from_bytes(&bytes).expect("structured dictionary");
        let mut compressor =
            zstd::bulk::Compressor::with_dictionary(3, &bytes).expect("compressor");
        let frame = compressor
            .compress(&vec![b' '; 10 << 20])
            .expect("compress");
        let mut decoder = FrameDecoder::new(Some(&dictionary), 1 << 16).expect("decoder");
        assert_eq!(decoder.binary(&frame), Err(FrameError::Decompress));
        assert!(
            decoder.buffer.capacity() < 1 << 20,
            "the cap bounds the buffer"
        );
    }

    #[test]
    fn frames_of_another_dictionary_or_garbage_are_refused() {
        let ours = Dictionary::from_bytes(&trained()).expect("dictionary");
        let plain = zstd::bulk::compress(b"{}", 3).expect("compress");
        let mut decoder = FrameDecoder::new(Some(&ours), 1024).expect("decoder");
        assert_eq!(decoder.binary(&plain), Err(FrameError::Dictionary));
        assert_eq!(decoder.binary(b"garbage"), Err(FrameError::Dictionary));
        let mut uncompressed = FrameDecoder::new(None, 1024).expect("decoder");
        assert_eq!(uncompressed.binary(&plain), Err(FrameError::Unexpected));
    }

    #[test]
    fn a_truncated_frame_is_refused() {
        let bytes = trained();
        let dictionary = Dictionary::from_bytes(&bytes).expect("dictionary");
        let mut compressor =
            zstd::bulk::Compressor::with_dictionary(3, &bytes).expect("compressor");
        let frame = compressor.compress(&[b'x'; 5000]).expect("compress");
        let mut decoder = FrameDecoder::new(Some(&dictionary), 1 << 16).expect("decoder");
        assert_eq!(
            decoder.binary(&frame[..frame.len() - 3]),
            Err(FrameError::Decompress)
        );
    }

    #[test]
    fn a_file_that_is_not_a_dictionary_is_refused() {
        assert!(Dictionary::from_bytes(b"not a dictionary").is_none());
    }
}
