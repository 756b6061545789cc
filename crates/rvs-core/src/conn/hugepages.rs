//! Asks the kernel to back the connection table's big arrays with transparent huge pages.
//!
//! With millions of entries, every random lookup misses the TLB on 4 KiB pages; 2 MiB pages
//! cut the page walks. On kernels whose THP mode is "madvise" (Debian's default) this needs
//! an explicit `madvise(MADV_HUGEPAGE)` on the range. This is the only `unsafe` in
//! rvs-core: one system call that changes no memory contents, given a range we own.

/// Advises huge pages for the memory of `buf` (whole 2 MiB-aligned pieces of it). Errors
/// are ignored: it is a hint.
pub fn advise<T>(buf: &[T]) {
    const HUGE: usize = 2 << 20;
    let start = buf.as_ptr() as usize;
    let len = std::mem::size_of_val(buf);
    let aligned = start.next_multiple_of(HUGE);
    let end = (start + len) & !(HUGE - 1);
    if end <= aligned {
        return;
    }
    // SAFETY: madvise with MADV_HUGEPAGE only changes how the kernel backs the pages of a
    // range inside an allocation we hold (`buf`); it neither reads nor writes memory and
    // cannot invalidate references.
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, end - aligned, libc::MADV_HUGEPAGE);
    }
}
