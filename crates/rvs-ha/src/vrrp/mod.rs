//! VRRP (RFC 3768 / RFC 5798) for director failover: packet format, receive validation,
//! the per-instance state machine with tracking, and sync groups.

pub mod frame;
pub mod group;
pub mod packet;
pub mod rx;
pub mod state;
pub mod timing;
pub mod track;
