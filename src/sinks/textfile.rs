//! node_exporter's textfile collector: the file is replaced atomically (a temp file in the same
//! folder whose name does not end in `.prom`, then rename), mode 0644 so that node_exporter,
//! running as another user, can read it.

use std::path::Path;

use anyhow::Context;

use crate::fsutil;

pub fn write(path: &Path, text: &[u8]) -> anyhow::Result<()> {
    fsutil::write_atomic(path, text, 0o644, false)
        .with_context(|| format!("cannot write {}", path.display()))
}
