//! The coordinator's web dashboard: server-rendered pages for viewers, operators and admins.
