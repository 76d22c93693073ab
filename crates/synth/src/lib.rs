//! Seeded synthetic clusters.
