//! sha256 of two byte streams at once: an archive's plaintext and its stored (encrypted) bytes.
//!
//! With the x86 SHA extensions one sha256 is bound by the latency of `sha256rnds2` (each round
//! waits for the one before), not by its throughput: two independent hashes whose rounds are
//! interleaved cost little more than one (on the 2-core test machine, an AMD EPYC: 1.8 GB/s for
//! one stream, 3.3 GB/s for two together, CPU time). Storing an archive hashes both its
//! plaintext and its stored bytes, so [`PairHash`] hashes them together: blocks of the two
//! streams are paired as they come; bytes without a partner are hashed alone. Without the SHA
//! extensions (or on another architecture) it is two `sha2` hashers.
//!
//! The compression function is `sha2` 0.10's SHA-NI one (`src/sha256/x86.rs`), its rounds
//! written once for two states; the tests compare every result with `sha2`.

use sha2::{Digest, Sha256};

/// Two sha256 computations, `a` and `b`, fed independently and paired where both have data.
pub(crate) struct PairHash(Imp);

enum Imp {
    #[cfg(target_arch = "x86_64")]
    Ni(Box<[ni::Lane; 2]>),
    Soft(Box<[Sha256; 2]>),
}

impl PairHash {
    pub(crate) fn new() -> PairHash {
        #[cfg(target_arch = "x86_64")]
        if ni::available() {
            return PairHash(Imp::Ni(Box::new([ni::Lane::new(), ni::Lane::new()])));
        }
        PairHash::soft()
    }

    /// Two `sha2` hashers (what [`PairHash::new`] falls back to).
    pub(crate) fn soft() -> PairHash {
        PairHash(Imp::Soft(Box::new([Sha256::new(), Sha256::new()])))
    }

    /// Hashes `a` into the first stream and `b` into the second (either may be empty).
    pub(crate) fn update(&mut self, a: &[u8], b: &[u8]) {
        match &mut self.0 {
            #[cfg(target_arch = "x86_64")]
            Imp::Ni(l) => {
                let [la, lb] = &mut **l;
                // SAFETY: `Ni` is only built when the CPU has the SHA extensions and SSE4.1.
                unsafe { ni::update(la, a, lb, b) }
            }
            Imp::Soft(h) => {
                h[0].update(a);
                h[1].update(b);
            }
        }
    }

    /// The two digests.
    pub(crate) fn finalize(self) -> ([u8; 32], [u8; 32]) {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Imp::Ni(l) => {
                let [la, lb] = *l;
                // SAFETY: as in `update`.
                unsafe { (la.finish(), lb.finish()) }
            }
            Imp::Soft(h) => {
                let [ha, hb] = *h;
                (ha.finalize().into(), hb.finalize().into())
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod ni {
    use std::arch::x86_64::*;

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    const IV: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    /// One stream: its state, the bytes of a block not yet complete, the length so far.
    #[derive(Clone)]
    pub(super) struct Lane {
        state: [u32; 8],
        buf: [u8; 64],
        used: usize,
        total: u64,
    }

    impl Lane {
        pub(super) fn new() -> Lane {
            Lane {
                state: IV,
                buf: [0; 64],
                used: 0,
                total: 0,
            }
        }

        /// Adds bytes to the incomplete block (compressing it once complete); returns the rest
        /// of `data`, which is empty unless the block was completed (then `used == 0`).
        #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
        unsafe fn fill<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
            if self.used == 0 && data.len() >= 64 {
                return data;
            }
            let k = data.len().min(64 - self.used);
            self.buf[self.used..self.used + k].copy_from_slice(&data[..k]);
            self.used += k;
            self.total += k as u64;
            if self.used == 64 {
                let block = self.buf;
                // SAFETY: the caller has checked the CPU.
                unsafe { compress1(&mut self.state, &block) };
                self.used = 0;
            }
            &data[k..]
        }

        /// Hashes `data` alone.
        #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
        unsafe fn single(&mut self, data: &[u8]) {
            // SAFETY (all three): the caller has checked the CPU.
            let rest = unsafe { self.fill(data) };
            if rest.is_empty() {
                return;
            }
            let whole = rest.len() / 64 * 64;
            unsafe { compress1(&mut self.state, &rest[..whole]) };
            self.total += whole as u64;
            unsafe { self.fill(&rest[whole..]) };
        }

        /// The digest (sha256's padding: 0x80, zeros, the length in bits).
        #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
        pub(super) unsafe fn finish(mut self) -> [u8; 32] {
            let bits = self.total.wrapping_mul(8);
            let mut pad = [0u8; 128];
            pad[0] = 0x80;
            let n = if self.used < 56 { 64 } else { 128 } - self.used;
            pad[n - 8..n].copy_from_slice(&bits.to_be_bytes());
            // SAFETY: the caller has checked the CPU.
            unsafe { self.single(&pad[..n]) };
            debug_assert_eq!(self.used, 0);
            let mut out = [0u8; 32];
            for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
                o.copy_from_slice(&w.to_be_bytes());
            }
            out
        }
    }

    /// Hashes `a` into `la` and `b` into `lb`, the whole blocks both have paired.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn update(la: &mut Lane, a: &[u8], lb: &mut Lane, b: &[u8]) {
        // SAFETY (every call): the caller has checked the CPU.
        let (mut a, mut b) = unsafe { (la.fill(a), lb.fill(b)) };
        if la.used == 0 && lb.used == 0 {
            let n = a.len().min(b.len()) / 64 * 64;
            if n > 0 {
                unsafe { compress2(&mut la.state, &a[..n], &mut lb.state, &b[..n]) };
                la.total += n as u64;
                lb.total += n as u64;
                a = &a[n..];
                b = &b[n..];
            }
        }
        unsafe {
            la.single(a);
            lb.single(b);
        }
    }

    #[inline(always)]
    unsafe fn schedule(v0: __m128i, v1: __m128i, v2: __m128i, v3: __m128i) -> __m128i {
        // SAFETY: inlined into functions enabling the SHA extensions.
        unsafe {
            let t1 = _mm_sha256msg1_epu32(v0, v1);
            let t2 = _mm_alignr_epi8(v3, v2, 4);
            let t3 = _mm_add_epi32(t1, t2);
            _mm_sha256msg2_epu32(t3, v3)
        }
    }

    /// The state as the SHA instructions hold it (ABEF, CDGH).
    #[inline(always)]
    unsafe fn load(s: &[u32; 8]) -> (__m128i, __m128i) {
        // SAFETY: 32 bytes read (unaligned loads); SSE4.1 enabled by the caller.
        unsafe {
            let p = s.as_ptr() as *const __m128i;
            let dcba = _mm_loadu_si128(p);
            let efgh = _mm_loadu_si128(p.add(1));
            let cdab = _mm_shuffle_epi32(dcba, 0xB1);
            let efgh = _mm_shuffle_epi32(efgh, 0x1B);
            (
                _mm_alignr_epi8(cdab, efgh, 8),
                _mm_blend_epi16(efgh, cdab, 0xF0),
            )
        }
    }

    #[inline(always)]
    unsafe fn store(s: &mut [u32; 8], abef: __m128i, cdgh: __m128i) {
        // SAFETY: 32 bytes written (unaligned stores); SSE4.1 enabled by the caller.
        unsafe {
            let feba = _mm_shuffle_epi32(abef, 0x1B);
            let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
            let p = s.as_mut_ptr() as *mut __m128i;
            _mm_storeu_si128(p, _mm_blend_epi16(feba, dchg, 0xF0));
            _mm_storeu_si128(p.add(1), _mm_alignr_epi8(dchg, feba, 8));
        }
    }

    /// A block's 16 words, byte-swapped.
    #[inline(always)]
    unsafe fn words(block: &[u8]) -> [__m128i; 4] {
        debug_assert!(block.len() >= 64);
        // SAFETY: 64 bytes read (unaligned loads), `block` has them; SSSE3 enabled by the caller.
        unsafe {
            let mask = _mm_set_epi64x(
                0x0C0D_0E0F_0809_0A0Bu64 as i64,
                0x0405_0607_0001_0203u64 as i64,
            );
            let p = block.as_ptr() as *const __m128i;
            [
                _mm_shuffle_epi8(_mm_loadu_si128(p), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), mask),
                _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), mask),
            ]
        }
    }

    /// Rounds 4i..4i+4 of one state (schedule, constants, two `sha256rnds2`). Callers write it
    /// out 16 times: the loop unrolled, so that two states' instructions interleave and the
    /// words stay in registers.
    macro_rules! round {
        ($i:expr, $w:ident, $abef:ident, $cdgh:ident, $kv:ident) => {{
            const I: usize = $i;
            if I >= 4 {
                $w[I % 4] = schedule($w[I % 4], $w[(I + 1) % 4], $w[(I + 2) % 4], $w[(I + 3) % 4]);
            }
            let t = _mm_add_epi32($w[I % 4], $kv);
            $cdgh = _mm_sha256rnds2_epu32($cdgh, $abef, t);
            $abef = _mm_sha256rnds2_epu32($abef, $cdgh, _mm_shuffle_epi32(t, 0x0E));
        }};
    }

    /// sha256's compression of whole blocks (`data.len()` a multiple of 64).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress1(state: &mut [u32; 8], data: &[u8]) {
        // SAFETY: reads within `data` (whole blocks) and `K`; the CPU checked by the caller.
        unsafe {
            let (mut abef, mut cdgh) = load(state);
            for block in data.chunks_exact(64) {
                let (abef0, cdgh0) = (abef, cdgh);
                let mut w = words(block);
                macro_rules! r {
                    ($($i:expr),+) => {$(
                        let kv = _mm_loadu_si128(K.as_ptr().add(4 * $i) as *const __m128i);
                        round!($i, w, abef, cdgh, kv);
                    )+};
                }
                r!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                abef = _mm_add_epi32(abef, abef0);
                cdgh = _mm_add_epi32(cdgh, cdgh0);
            }
            store(state, abef, cdgh);
        }
    }

    /// Two compressions of as many whole blocks each, their rounds interleaved.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress2(sa: &mut [u32; 8], a: &[u8], sb: &mut [u32; 8], b: &[u8]) {
        debug_assert_eq!(a.len(), b.len());
        // SAFETY: as in `compress1`.
        unsafe {
            let (mut abef_a, mut cdgh_a) = load(sa);
            let (mut abef_b, mut cdgh_b) = load(sb);
            for (ba, bb) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
                let (a0, c0, b0, d0) = (abef_a, cdgh_a, abef_b, cdgh_b);
                let mut wa = words(ba);
                let mut wb = words(bb);
                macro_rules! r {
                    ($($i:expr),+) => {$(
                        let kv = _mm_loadu_si128(K.as_ptr().add(4 * $i) as *const __m128i);
                        round!($i, wa, abef_a, cdgh_a, kv);
                        round!($i, wb, abef_b, cdgh_b, kv);
                    )+};
                }
                r!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                abef_a = _mm_add_epi32(abef_a, a0);
                cdgh_a = _mm_add_epi32(cdgh_a, c0);
                abef_b = _mm_add_epi32(abef_b, b0);
                cdgh_b = _mm_add_epi32(cdgh_b, d0);
            }
            store(sa, abef_a, cdgh_a);
            store(sb, abef_b, cdgh_b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut x = 0x9E37_79B9_7F4A_7C15 ^ seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn sha(d: &[u8]) -> [u8; 32] {
        Sha256::digest(d).into()
    }

    /// Feeds `a` and `b` in pieces of the sizes given (cycled), both ways, and compares.
    fn check(mut p: PairHash, a: &[u8], b: &[u8], sizes_a: &[usize], sizes_b: &[usize]) {
        let (mut i, mut j, mut k) = (0, 0, 0);
        while i < a.len() || j < b.len() {
            let na = sizes_a[k % sizes_a.len()].min(a.len() - i);
            let nb = sizes_b[k % sizes_b.len()].min(b.len() - j);
            p.update(&a[i..i + na], &b[j..j + nb]);
            i += na;
            j += nb;
            k += 1;
        }
        assert_eq!(
            p.finalize(),
            (sha(a), sha(b)),
            "{} {} bytes",
            a.len(),
            b.len()
        );
    }

    #[test]
    fn matches_sha2_on_every_split() {
        let a = data(300_000, 1);
        let b = data(300_017, 2);
        let splits: &[&[usize]] = &[
            &[1],
            &[63, 64, 65],
            &[64],
            &[65_536],
            &[65_552, 1000, 7],
            &[0, 5, 128],
            &[1 << 20],
        ];
        for sa in splits {
            for sb in splits {
                if sa == &[1usize] && sb == &[1usize] {
                    continue;
                }
                check(PairHash::new(), &a, &b, sa, sb);
                check(PairHash::soft(), &a, &b, sa, sb);
            }
        }
        check(PairHash::new(), &a[..1000], &b[..1000], &[1], &[1]);
    }

    #[test]
    fn lengths_around_the_padding() {
        for n in [
            0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000,
        ] {
            for m in [0, 55, 56, 64, 200] {
                let (a, b) = (data(n, n as u64), data(m, 7 + m as u64));
                check(PairHash::new(), &a, &b, &[n.max(1)], &[m.max(1)]);
                check(PairHash::new(), &a, &b, &[3], &[17]);
            }
        }
    }

    #[test]
    fn one_stream_only() {
        let a = data(200_000, 3);
        check(PairHash::new(), &a, &[], &[4096], &[1]);
        check(PairHash::new(), &[], &a, &[1], &[4096]);
    }
}
