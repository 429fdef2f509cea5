//! Holder package for the workspace-level integration tests in this folder.
