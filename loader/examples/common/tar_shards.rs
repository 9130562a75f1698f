//! WebDataset-style tar shards for the stream benchmarks.

use std::path::{Path, PathBuf};

/// Write `shards` tar files into `dir` (`shard-0000.tar`, …): shard `s` holds `samples(s)`
/// samples, sample `i` of it two members, `{s:04}{i:06}.{ext}` holding `body(s, i)` and
/// `{s:04}{i:06}.cls` holding `7`. Returns their paths.
pub fn write_tar_shards(
    dir: &Path,
    shards: usize,
    samples: impl Fn(usize) -> usize,
    ext: &str,
    body: impl Fn(usize, usize) -> Vec<u8>,
) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..shards)
        .map(|s| {
            let path = dir.join(format!("shard-{s:04}.tar"));
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            let mut b = tar::Builder::new(file);
            for i in 0..samples(s) {
                let data = body(s, i);
                for (ext, data) in [(ext, data.as_slice()), ("cls", &b"7"[..])] {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(data.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, format!("{s:04}{i:06}.{ext}"), data)
                        .unwrap();
                }
            }
            b.into_inner().unwrap();
            path
        })
        .collect()
}
