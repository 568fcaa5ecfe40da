//! Where a search keeps what it reads once and in order: the frontier and the paths.
//!
//! The visited set must answer a random lookup for every successor, so it stays in memory
//! ([`crate::visited`]); the frontier is written a level at a time and read back a chunk at a
//! time, and the paths (a parent and an action index per state) are appended in state order and
//! read only to rebuild a counterexample. Both can live in files: with [`Store::Disk`], each is
//! a file in the directory given, unlinked as soon as it is made (the system removes it when the
//! search drops it, or if the process dies), written through a buffer and read with positioned
//! reads, which threads may issue at once. A search then holds in memory its visited set, one
//! round's successors, a write buffer per file and a chunk per thread; the rest is the files'.
//! A directory on a tmpfs is memory too: give one on a disk.
//!
//! Writing can fail (a full disk): the search stops with a [`SpillError`]. Reading back what was
//! written can fail only if the disk does; that panics, naming the directory.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a search keeps its frontier and its paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Store {
    /// In memory: the fastest, while they fit.
    #[default]
    Memory,
    /// In files in this directory, removed as the search goes (and if it dies).
    Disk(PathBuf),
}

impl Store {
    /// Checks that a search can make its files here.
    pub fn ready(&self) -> Result<(), SpillError> {
        match self {
            Store::Memory => Ok(()),
            Store::Disk(dir) => Spilled::create(dir).map(drop),
        }
    }
}

/// A search that could not keep its frontier or paths on disk: what it was doing, where, and why.
#[derive(Debug)]
pub struct SpillError {
    /// The directory given.
    pub dir: PathBuf,
    /// What failed: making a file, or writing to one.
    pub doing: &'static str,
    /// Why.
    pub source: std::io::Error,
}

impl std::fmt::Display for SpillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cause is `source`, which a report of the chain prints after this.
        write!(
            f,
            "cannot spill to {} (give an existing, writable directory on a disk with room): {} failed",
            self.dir.display(),
            self.doing
        )
    }
}

impl std::error::Error for SpillError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Words written to a file before they are written out (64 KiB).
const BUFFER_WORDS: usize = 1 << 13;

/// A sequence of 64-bit words, appended to and then read back in ranges.
pub(crate) enum Words {
    Memory(Vec<u64>),
    Disk(Spilled),
}

impl Words {
    /// An empty sequence, kept where `store` says.
    pub(crate) fn new(store: &Store) -> Result<Words, SpillError> {
        Ok(match store {
            Store::Memory => Words::Memory(Vec::new()),
            Store::Disk(dir) => Words::Disk(Spilled::create(dir)?),
        })
    }

    /// The words held.
    pub(crate) fn len(&self) -> usize {
        match self {
            Words::Memory(words) => words.len(),
            Words::Disk(spilled) => spilled.len,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn extend_from_slice(&mut self, words: &[u64]) -> Result<(), SpillError> {
        match self {
            Words::Memory(held) => {
                held.extend_from_slice(words);
                Ok(())
            }
            Words::Disk(spilled) => spilled.append(words),
        }
    }

    /// Writes out what is buffered: every word appended so far can then be read.
    pub(crate) fn flush(&mut self) -> Result<(), SpillError> {
        match self {
            Words::Memory(_) => Ok(()),
            Words::Disk(spilled) => spilled.write_out(),
        }
    }

    /// The words of `range`, all written out before ([`Words::flush`]).
    pub(crate) fn get(&self, range: std::ops::Range<usize>) -> Cow<'_, [u64]> {
        match self {
            Words::Memory(words) => Cow::Borrowed(&words[range]),
            Words::Disk(spilled) => Cow::Owned(spilled.read(range)),
        }
    }

    /// The bytes this holds in memory (in use).
    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            Words::Memory(words) => words.len() * size_of::<u64>(),
            Words::Disk(spilled) => spilled.buffer.len() * size_of::<u64>(),
        }
    }

    /// The bytes this holds in its file.
    pub(crate) fn disk_bytes(&self) -> usize {
        match self {
            Words::Memory(_) => 0,
            Words::Disk(spilled) => spilled.written * size_of::<u64>(),
        }
    }
}

/// Words in an unlinked file, with those not yet written out.
pub(crate) struct Spilled {
    file: File,
    dir: PathBuf,
    buffer: Vec<u64>,
    /// Words written out to the file.
    written: usize,
    /// Words appended: written out, then buffered.
    len: usize,
}

/// Tells apart the files one process makes.
static MADE: AtomicU64 = AtomicU64::new(0);

impl Spilled {
    fn create(dir: &Path) -> Result<Spilled, SpillError> {
        let failed = |doing| move |source| SpillError { dir: dir.to_owned(), doing, source };
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".coherence-spill-{}-{n}", std::process::id()));
        let file =
            File::options().read(true).write(true).create_new(true).open(&path).map_err(failed("making a file"))?;
        // The open file keeps it; nothing is left behind whatever becomes of the process.
        std::fs::remove_file(&path).map_err(failed("unlinking the file made"))?;
        Ok(Spilled { file, dir: dir.to_owned(), buffer: Vec::with_capacity(BUFFER_WORDS), written: 0, len: 0 })
    }

    fn append(&mut self, words: &[u64]) -> Result<(), SpillError> {
        self.buffer.extend_from_slice(words);
        self.len += words.len();
        if self.buffer.len() >= BUFFER_WORDS { self.write_out() } else { Ok(()) }
    }

    fn write_out(&mut self) -> Result<(), SpillError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = self.buffer.iter().flat_map(|w| w.to_le_bytes()).collect();
        (&self.file).write_all(&bytes).map_err(|source| SpillError {
            dir: self.dir.clone(),
            doing: "writing the frontier or paths",
            source,
        })?;
        self.written += self.buffer.len();
        self.buffer.clear();
        Ok(())
    }

    fn read(&self, range: std::ops::Range<usize>) -> Vec<u64> {
        assert!(range.end <= self.written, "a spilled range is read before it is written out");
        let mut bytes = vec![0u8; range.len() * size_of::<u64>()];
        self.file
            .read_exact_at(&mut bytes, (range.start * size_of::<u64>()) as u64)
            .unwrap_or_else(|e| panic!("cannot read back what was spilled to {}: {e}", self.dir.display()));
        bytes.chunks_exact(size_of::<u64>()).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Words spilled read back as they were appended, across buffer boundaries, in any range;
        /// memory holds no more than the write buffer.
        #[test]
        fn spilled_words_read_back_as_written(
            runs in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 0..3000), 0..60),
            cuts in proptest::collection::vec((any::<usize>(), any::<usize>()), 1..20),
        ) {
            let mut memory = Words::new(&Store::Memory).unwrap();
            let mut disk = Words::new(&Store::Disk(std::env::temp_dir())).unwrap();
            for run in &runs {
                memory.extend_from_slice(run).unwrap();
                disk.extend_from_slice(run).unwrap();
                prop_assert!(disk.memory_bytes() < 8 * (BUFFER_WORDS + run.len()));
            }
            disk.flush().unwrap();
            prop_assert_eq!(memory.len(), disk.len());
            prop_assert_eq!(disk.memory_bytes(), 0);
            prop_assert_eq!(disk.disk_bytes(), 8 * disk.len());
            let len = memory.len();
            for (a, b) in cuts {
                let (a, b) = if len == 0 { (0, 0) } else { (a % (len + 1), b % (len + 1)) };
                let range = a.min(b)..a.max(b);
                prop_assert_eq!(memory.get(range.clone()), disk.get(range));
            }
        }
    }

    #[test]
    fn a_spill_leaves_no_file_and_a_bad_directory_is_named() {
        let dir = std::env::temp_dir().join(format!("coherence-spill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut words = Words::new(&Store::Disk(dir.clone())).unwrap();
        words.extend_from_slice(&[1, 2, 3]).unwrap();
        words.flush().unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the file is unlinked while in use");
        assert_eq!(&*words.get(1..3), &[2, 3]);
        drop(words);
        std::fs::remove_dir(&dir).unwrap();
        let error = Store::Disk(dir.clone()).ready().unwrap_err().to_string();
        assert!(error.starts_with(&format!("cannot spill to {} (give", dir.display())), "{error}");
        assert!(error.ends_with("making a file failed"), "{error}");
    }

    /// A full disk: `/dev/full` takes no byte, and the error says so.
    #[test]
    fn a_full_disk_is_an_error_naming_the_directory() {
        let file = File::options().read(true).write(true).open("/dev/full").expect("Linux has /dev/full");
        let dir = PathBuf::from("/dev");
        let mut spilled = Spilled { file, dir, buffer: Vec::new(), written: 0, len: 0 };
        let error = spilled.append(&vec![7; BUFFER_WORDS]).unwrap_err().to_string();
        assert!(
            error.starts_with("cannot spill to /dev (give") && error.ends_with("writing the frontier or paths failed"),
            "{error}"
        );
    }
}
