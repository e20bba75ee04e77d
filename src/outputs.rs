//! TEMPORARY local placeholder, never committed: replaced by the outputs branch.
use std::path::Path;
pub fn save(_root: &Path, _t: &crate::template::Template) -> crate::error::Result<()> {
    Ok(())
}
