//! Renderers over `impl Write`: pure, so tests print into a `Vec<u8>`.

pub mod churn;
pub mod connlist;
mod escape;
pub mod explain;
pub mod features;
pub mod history;
pub mod html;
pub mod json_report;
pub mod junit;
mod matrix;
pub mod services;
pub mod tables;
