//! Renderers over `impl Write`: pure, so tests print into a `Vec<u8>`.

pub mod connlist;
pub mod explain;
pub mod run;
