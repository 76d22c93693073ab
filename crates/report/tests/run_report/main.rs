//! The run renderers (tables, JSON, JUnit, HTML) over one realistic report: one test binary.

mod fixture;
mod history;
mod html;
mod json;
mod junit;
mod tables;
