//! The report's Q3 stage.
