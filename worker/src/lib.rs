//! Placeholder: built in the cluster issue (see ARCHITECTURE.md).
