//! The error status register (MSR 0x828).
//!
//! SDM Vol. 3A, "Error Handling": the ESR latches errors the APIC detected
//! since the last write to it. Reading is two steps: *write* 0 (in x2APIC
//! mode only 0 may be written; anything else raises #GP), which moves the
//! errors found since the previous write into the register and re-arms the
//! error interrupt, then read.
//! [`LocalApic::read_and_clear_esr`](crate::LocalApic::read_and_clear_esr)
//! does both.

use bitflags::bitflags;

bitflags! {
    /// ESR bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Esr: u32 {
        /// Checksum error on a message this APIC sent (P6 / Pentium only).
        const SEND_CHECKSUM = 1 << 0;
        /// Checksum error on a message this APIC received (P6 / Pentium
        /// only).
        const RECEIVE_CHECKSUM = 1 << 1;
        /// A message this APIC sent was accepted by no APIC (P6 / Pentium
        /// only).
        const SEND_ACCEPT = 1 << 2;
        /// A message this APIC received was accepted by no APIC, itself
        /// included (P6 / Pentium only).
        const RECEIVE_ACCEPT = 1 << 3;
        /// A lowest-priority IPI was sent but this APIC does not support
        /// lowest-priority delivery (always the case in x2APIC mode, where
        /// the IPI is then dropped).
        const REDIRECTABLE_IPI = 1 << 4;
        /// An IPI with a vector in 0–15 was sent.
        const SEND_ILLEGAL_VECTOR = 1 << 5;
        /// An interrupt with a vector in 0–15 was received or generated
        /// locally (LVT, self IPI).
        const RECEIVED_ILLEGAL_VECTOR = 1 << 6;
        /// An access to an unimplemented register (xAPIC mode only; x2APIC
        /// raises #GP instead).
        const ILLEGAL_REGISTER_ADDRESS = 1 << 7;
    }
}

impl Esr {
    /// The bits that blame a message *this* APIC sent. Receive-side bits
    /// are another CPU's fault (or a stray LVT vector) and are left for the
    /// error interrupt handler, so they never fail a send.
    pub const SEND_ERRORS: Self = Self::SEND_CHECKSUM
        .union(Self::SEND_ACCEPT)
        .union(Self::REDIRECTABLE_IPI)
        .union(Self::SEND_ILLEGAL_VECTOR);

    /// Whether any send-side error bit is set.
    pub const fn has_send_error(self) -> bool {
        self.intersects(Self::SEND_ERRORS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions_match_the_sdm() {
        assert_eq!(Esr::SEND_CHECKSUM.bits(), 0x01);
        assert_eq!(Esr::RECEIVE_CHECKSUM.bits(), 0x02);
        assert_eq!(Esr::SEND_ACCEPT.bits(), 0x04);
        assert_eq!(Esr::RECEIVE_ACCEPT.bits(), 0x08);
        assert_eq!(Esr::REDIRECTABLE_IPI.bits(), 0x10);
        assert_eq!(Esr::SEND_ILLEGAL_VECTOR.bits(), 0x20);
        assert_eq!(Esr::RECEIVED_ILLEGAL_VECTOR.bits(), 0x40);
        assert_eq!(Esr::ILLEGAL_REGISTER_ADDRESS.bits(), 0x80);
        assert_eq!(Esr::all().bits(), 0xFF);
    }

    #[test]
    fn only_send_side_bits_fail_a_send() {
        assert_eq!(Esr::SEND_ERRORS.bits(), 0x35);
        assert!(Esr::SEND_ILLEGAL_VECTOR.has_send_error());
        assert!(Esr::SEND_ACCEPT.has_send_error());
        assert!(!Esr::RECEIVED_ILLEGAL_VECTOR.has_send_error());
        assert!(!(Esr::RECEIVE_ACCEPT | Esr::RECEIVE_CHECKSUM).has_send_error());
        assert!(!Esr::empty().has_send_error());
    }
}
