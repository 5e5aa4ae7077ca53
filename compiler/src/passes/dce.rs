//! `dce`: removes nodes whose results reach no graph output.

use super::{PassContext, PassError};
use sparsec_ir::Graph;

/// Runs the pass.
pub(super) fn run(graph: &mut Graph, _cx: &mut PassContext) -> Result<bool, PassError> {
    Ok(graph.remove_dead_nodes() > 0)
}
