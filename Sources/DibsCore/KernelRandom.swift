import Synchronization

#if canImport(Darwin)
    import Darwin
#elseif canImport(Glibc)
    import Glibc
#endif

/// Bytes from the kernel's cryptographically secure generator, drawn 4 KiB at a time:
/// `SystemRandomNumberGenerator` makes a system call for every 8 bytes, two for each hold
/// token, on the claim path. Bytes handed out are zeroed in the pool.
enum KernelRandom {
    private struct Pool: ~Copyable {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
        var used = 4096
    }

    private static let pool = Mutex(Pool())

    /// `count` random bytes (at most 4096).
    static func bytes(_ count: Int) -> [UInt8] {
        precondition(count <= 4096, "KernelRandom draws at most 4096 bytes at a time")
        return pool.withLock { pool in
            if pool.used + count > pool.bytes.count {
                fill(pool.bytes)
                pool.used = 0
            }
            let taken = UnsafeMutableRawBufferPointer(rebasing: pool.bytes[pool.used..<pool.used + count])
            defer {
                taken.initializeMemory(as: UInt8.self, repeating: 0)
                pool.used += count
            }
            return Array(taken)
        }
    }

    private static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        #if canImport(Darwin)
            arc4random_buf(buffer.baseAddress, buffer.count)
        #else
            // /dev/urandom: Glibc's module does not bring in getrandom(2); the two read the same
            // generator once it is seeded, which it is long before a server answers a claim.
            let file = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
            guard file >= 0 else { fatalError("cannot open /dev/urandom: errno \(errno)") }
            defer { close(file) }
            var filled = 0
            while filled < buffer.count {
                let got = read(file, buffer.baseAddress! + filled, buffer.count - filled)
                if got > 0 {
                    filled += got
                } else if got == 0 || errno != EINTR {
                    // As SystemRandomNumberGenerator does: no token is better than a guessable one.
                    fatalError("reading /dev/urandom failed: errno \(errno)")
                }
            }
        #endif
    }
}
