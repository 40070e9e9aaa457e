//! How much of a peer's input an error reply repeats (shared by the call machine and the
//! permission check, which both answer with errors naming what the peer sent).

/// Most bytes of the peer's input an error reply repeats (a method name, a request body);
/// longer input is cut there and marked with `…`.
pub const ERROR_ECHO_BYTES_MAX: usize = 256;

/// Peer input as an error reply may repeat it: at most [`ERROR_ECHO_BYTES_MAX`] bytes.
pub fn echo(text: &str) -> String {
    let mut end = text.len().min(ERROR_ECHO_BYTES_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = text.get(..end).unwrap_or_default().to_owned();
    if end < text.len() {
        shown.push('…');
    }
    shown
}
