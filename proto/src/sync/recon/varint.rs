//! Varints as negentropy writes them: base 128, most significant group first, the high bit
//! set on every byte but the last. (Reading them is the codec's, which bounds the input.)

/// Most bytes a varint of a `u64` takes.
pub const VARINT_BYTES_MAX: usize = 10;

/// Appends `value` as a base-128 varint, most significant group first.
pub fn write_varint(out: &mut Vec<u8>, value: u64) {
    let groups = (u64::BITS - value.leading_zeros()).div_ceil(7).max(1);
    for group in (0..groups).rev() {
        let bits = u8::try_from((value >> (7 * group)) & 0x7f).unwrap_or(0);
        let more = if group > 0 { 0x80 } else { 0 };
        out.push(bits | more);
    }
}
