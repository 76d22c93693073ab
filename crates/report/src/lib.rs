//! Renderers over `impl Write`: pure, so tests print into a `Vec<u8>`.

pub mod connlist;
pub mod explain;
pub mod run;
pub mod services;
pub mod tables;
pub mod json_report;
pub mod junit;
pub mod html;
mod matrix;
