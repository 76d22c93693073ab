//! A field's path (`spec.ingress[0].ports[1]`), spelt out only when an error names it: valid
//! objects, nearly all of them, never need the text, and formatting every path while checking
//! them was a tenth of loading a manifest.

use std::fmt;

/// A field of the path before it, or an item of the list at it.
#[derive(Clone, Copy)]
pub(crate) enum Field<'p> {
    Named(&'p dyn fmt::Display, &'p str),
    Index(&'p dyn fmt::Display, usize),
}

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Field::Named(parent, name) => write!(f, "{parent}.{name}"),
            Field::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// Anything written as a path (`"spec"`, a [`Field`]) leads to its fields and items.
pub(crate) trait Path: fmt::Display + Copy {
    fn field<'p>(&'p self, name: &'p str) -> Field<'p> {
        Field::Named(self, name)
    }

    fn index(&self, i: usize) -> Field<'_> {
        Field::Index(self, i)
    }
}

impl<T: fmt::Display + Copy> Path for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_written() {
        let spec = "spec";
        let ingress = spec.field("ingress");
        let rule = ingress.index(0);
        assert_eq!(rule.field("ports").index(1).to_string(), "spec.ingress[0].ports[1]");
        assert_eq!("spec.template.spec".field("containers").to_string(), "spec.template.spec.containers");
    }
}
