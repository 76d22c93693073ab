//! Diagnosis: from a comparison, the likely fault and the cells it explains.
