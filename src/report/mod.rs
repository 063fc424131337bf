//! Reports for management and auditors: the quarterly recovery-objectives report (standards
//! §4.2) and the charts and PDF printing that it and the per-drill report share.

pub mod chart;
pub mod pdf;
pub mod quarterly;
