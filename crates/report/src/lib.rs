//! Renderers over `impl Write`: pure, so tests print into a `Vec<u8>`.

pub mod connlist;
pub mod explain;
pub mod features;
pub mod html;
pub mod json_report;
pub mod junit;
mod matrix;
pub mod services;
pub mod tables;
