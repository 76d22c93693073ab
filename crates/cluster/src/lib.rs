//! One trait for "a place to run probes" ([`Backend`]), the probe schema it speaks
//! (`netmatrix.probe/v1`), and its backends: the local lab and an in-memory fake for tests.
