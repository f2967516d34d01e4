//! placeholder; built in a later issue.
