//! The checker's visited set: 64-bit state fingerprints in one open-addressing table.
//!
//! A fingerprint is stored as itself, 8 bytes, in a power-of-two array of slots probed linearly
//! from the slot its top bits name, so a lookup at low load touches one cache line (a general
//! hash set touches a control byte and a slot); near seven eighths full, a miss probes further. The table doubles when it is seven
//! eighths full, so it holds between 8 / 0.875 and 8 / 0.4375 bytes per fingerprint. (Linear
//! probing slows as a table fills; measured on the default bounds, growing at seven eighths is as
//! fast as growing at three quarters, and takes two thirds of the memory.)
//!
//! Slot value 0 means empty, so fingerprint 0 is stored as 1: the two become one state, which
//! adds 2^-64 to the collision bound of SPEC.md §6 and is otherwise invisible.

/// A set of 64-bit fingerprints.
pub struct Fingerprints {
    slots: Vec<u64>,
    len: usize,
    /// `64 - log2(slots.len())`: a fingerprint's home slot is its top bits.
    shift: u32,
    /// The bytes held while the table last grew (the old table and the new), until taken.
    growing: usize,
}

const EMPTY: u64 = 0;
const MIN_BITS: u32 = 12;

fn stored(fingerprint: u64) -> u64 {
    fingerprint.max(1)
}

impl Default for Fingerprints {
    fn default() -> Self {
        Self { slots: vec![EMPTY; 1 << MIN_BITS], len: 0, shift: 64 - MIN_BITS, growing: 0 }
    }
}

impl Fingerprints {
    /// The number of fingerprints held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes the table takes.
    pub fn bytes(&self) -> usize {
        self.slots.len() * size_of::<u64>()
    }

    /// The most bytes the table held since this was last asked: while it grows, the old table
    /// and the new.
    pub fn take_peak_bytes(&mut self) -> usize {
        std::mem::take(&mut self.growing).max(self.bytes())
    }

    /// Whether `fingerprint` is in the set.
    pub fn contains(&self, fingerprint: u64) -> bool {
        let fingerprint = stored(fingerprint);
        let mask = self.slots.len() - 1;
        let mut i = (fingerprint >> self.shift) as usize;
        loop {
            match self.slots[i] {
                EMPTY => return false,
                slot if slot == fingerprint => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Loads the home slots of `fingerprints`, so that the lookups that follow find them in the
    /// cache: the loads are independent, so their cache misses overlap instead of queueing.
    pub fn warm(&self, fingerprints: impl Iterator<Item = u64>) {
        let folded = fingerprints.fold(0u64, |acc, f| acc ^ self.slots[(stored(f) >> self.shift) as usize]);
        std::hint::black_box(folded);
    }

    /// Adds `fingerprint`; true if it was not in the set.
    pub fn insert(&mut self, fingerprint: u64) -> bool {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let inserted = place(&mut self.slots, self.shift, stored(fingerprint));
        self.len += usize::from(inserted);
        inserted
    }

    fn grow(&mut self) {
        let shift = self.shift - 1;
        let mut slots = vec![EMPTY; self.slots.len() * 2];
        for &fingerprint in self.slots.iter().filter(|&&f| f != EMPTY) {
            place(&mut slots, shift, fingerprint);
        }
        self.growing = self.growing.max((self.slots.len() + slots.len()) * size_of::<u64>());
        self.slots = slots;
        self.shift = shift;
    }
}

/// Puts `fingerprint` (never [`EMPTY`]) in the first free slot from its home; false if it is there.
fn place(slots: &mut [u64], shift: u32, fingerprint: u64) -> bool {
    let mask = slots.len() - 1;
    let mut i = (fingerprint >> shift) as usize;
    loop {
        match slots[i] {
            EMPTY => {
                slots[i] = fingerprint;
                return true;
            }
            slot if slot == fingerprint => return false,
            _ => i = (i + 1) & mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// The table answers as a general hash set does, through growth, collisions on home
        /// slots (values sharing their top bits) and the fingerprint 0.
        #[test]
        fn it_is_a_set(values in proptest::collection::vec(prop_oneof![any::<u64>(), 0u64..4, (0u64..64).prop_map(|k| k << 58)], 0..20_000)) {
            let mut table = Fingerprints::default();
            let mut reference = HashSet::new();
            for &v in &values {
                let v_stored = stored(v);
                prop_assert_eq!(table.insert(v), reference.insert(v_stored));
                prop_assert!(table.contains(v));
            }
            prop_assert_eq!(table.len(), reference.len());
            for v in [0u64, 1, 2, 3, u64::MAX, 1 << 63] {
                prop_assert_eq!(table.contains(v), reference.contains(&stored(v)));
            }
            prop_assert!(table.len() * 8 <= table.slots.len() * 7);
        }
    }
}
