//! node_exporter's textfile collector: the file is replaced atomically (a temp file in the same
//! folder whose name does not end in `.prom`, then rename), mode 0644 so that node_exporter,
//! running as another user, can read it. A symlinked textfile is written through its link, and
//! anything but a regular file in its place is left alone.

use std::path::Path;

use anyhow::Context;

use crate::fsutil;

pub fn write(path: &Path, text: &[u8]) -> anyhow::Result<()> {
    let target =
        fsutil::resolve_links(path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(kind) = fsutil::not_regular(&target) {
        anyhow::bail!(
            "cannot write {}: it is {kind}, not a regular file; set the textfile to a file",
            target.display()
        );
    }
    fsutil::write_atomic(&target, text, 0o644, false)
        .with_context(|| format!("cannot write {}", path.display()))
}
